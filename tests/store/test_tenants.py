"""The tenants table: the device (JID) each tenant is paired as, never shared by two."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from wamgr.errors import JidInUse
from wamgr.status import Desired
from wamgr.store.db import Database
from wamgr.store.tenants import TenantStore

JID = "15550000001@s.whatsapp.net"


@pytest.fixture
def tenants(database_url: str) -> Iterator[TenantStore]:
    db = Database(database_url, max_size=10)
    db.open()
    store = TenantStore(db)
    for tenant in ("a", "b"):
        store.set_desired(tenant, Desired.CONNECTED)
    yield store
    db.close()


def _jid(tenants: TenantStore, tenant_id: str) -> str | None:
    record = tenants.get(tenant_id)
    assert record is not None
    return record.status.jid


def test_a_jid_is_stored_and_forgotten(tenants: TenantStore) -> None:
    tenants.set_jid("a", JID)
    assert _jid(tenants, "a") == JID

    tenants.set_jid("a", None)
    assert _jid(tenants, "a") is None


def test_a_jid_another_tenant_is_paired_as_is_refused_naming_the_owner(
    tenants: TenantStore,
) -> None:
    tenants.set_jid("a", JID)

    with pytest.raises(JidInUse) as refused:
        tenants.set_jid("b", JID)

    assert (refused.value.tenant_id, refused.value.jid, refused.value.owner) == ("b", JID, "a")
    message = refused.value.format_message()
    assert f"device {JID} is already paired to tenant 'a'" in message
    assert "wamgr pair b" in message and "wamgr clear-auth a" in message
    assert (_jid(tenants, "a"), _jid(tenants, "b")) == (JID, None)


def test_storing_the_same_jid_again_for_its_owner_is_fine(tenants: TenantStore) -> None:
    tenants.set_jid("a", JID)
    tenants.set_jid("a", JID)
    assert _jid(tenants, "a") == JID


def test_a_jid_forgotten_by_its_tenant_can_be_paired_by_another(tenants: TenantStore) -> None:
    tenants.set_jid("a", JID)
    tenants.set_jid("a", None)

    tenants.set_jid("b", JID)
    assert _jid(tenants, "b") == JID


def test_of_tenants_storing_one_jid_at_once_exactly_one_keeps_it(tenants: TenantStore) -> None:
    names = [f"t{i}" for i in range(8)]
    for name in names:
        tenants.set_desired(name, Desired.CONNECTED)
    start = threading.Barrier(len(names))
    refused: list[JidInUse] = []

    def store(name: str) -> None:
        start.wait(timeout=5)
        try:
            tenants.set_jid(name, JID)
        except JidInUse as exc:
            refused.append(exc)

    threads = [threading.Thread(target=store, args=(n,), name=f"store-{n}") for n in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    owners = [n for n in names if _jid(tenants, n) == JID]
    assert len(owners) == 1
    assert len(refused) == len(names) - 1
    assert {exc.owner for exc in refused} == set(owners)
