"""The tenant settings table: stored whole and read back, an unknown tenant refused or added
wanted stopped in the same transaction, and the settings gone with their tenant."""

from __future__ import annotations

import pytest

from wamgr.errors import UnknownTenant
from wamgr.status import Desired
from wamgr.store.tenant_settings import TenantSettingsStore
from wamgr.store.tenants import TenantStore
from wamgr.tenant_settings import TenantSettings

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_settings_are_stored_whole_and_read_back(db) -> None:
    TenantStore(db).add("t1")
    store = TenantSettingsStore(db)
    settings = TenantSettings().changed(
        proxy="http://u:p@10.0.0.1:3128",
        webhooks=[{"url": "https://crm.example/h", "events": "message.ack", "secret": SECRET}],
        send_rate=2.5,
        send_burst=2,
        metadata={"nested": {"list": [1, "two", None]}},
    )

    assert store.put("t1", settings) is False  # known already

    assert store.get("t1") == settings
    assert store.proxy("t1") == "http://u:p@10.0.0.1:3128"
    assert store.all() == {"t1": settings}
    store.put("t1", TenantSettings())
    assert store.get("t1") == TenantSettings() and store.proxy("t1") is None


def test_a_tenant_without_settings_has_the_defaults(db) -> None:
    store = TenantSettingsStore(db)
    assert store.get("nobody") == TenantSettings()
    assert store.proxy("nobody") is None


def test_an_unknown_tenant_is_refused_or_created_wanted_stopped(db) -> None:
    store = TenantSettingsStore(db)
    settings = TenantSettings(send_rate=5.0)
    with pytest.raises(UnknownTenant):
        store.put("new", settings)
    assert TenantStore(db).get("new") is None

    assert store.put("new", settings, create=True) is True
    assert store.put("new", settings, create=True) is False

    record = TenantStore(db).get("new")
    assert record is not None and record.desired is Desired.STOPPED
    assert store.get("new") == settings


def test_settings_go_with_their_tenant(db) -> None:
    store = TenantSettingsStore(db)
    store.put("t1", TenantSettings(send_rate=1.0), create=True)
    TenantStore(db).delete("t1")
    assert store.all() == {}


def test_the_proxies_of_a_batch_are_read_in_one_call(db) -> None:
    store = TenantSettingsStore(db)
    for tenant in ("t1", "t2", "t3"):
        TenantStore(db).add(tenant)
    store.put("t1", TenantSettings().changed(proxy="socks5://10.0.0.1:1080"))
    store.put("t2", TenantSettings().changed(send_rate=1.0))  # settings, but no proxy
    assert store.proxies(["t1", "t2", "t3"]) == {"t1": "socks5://10.0.0.1:1080"}


def test_the_send_limits_of_many_tenants_are_read_in_one_call(db) -> None:
    store = TenantSettingsStore(db)
    for tenant in ("t1", "t2"):
        TenantStore(db).add(tenant)
    store.put("t1", TenantSettings().changed(send_rate=2.5, send_burst=3))
    assert store.send_limits_of(["t1", "t2"]) == {"t1": (2.5, 3), "t2": (None, None)}
