"""The tenants table: adding a tenant says whether this call created it, and the device (JID)
each tenant is paired as is never shared by two."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from wamgr.errors import JidInUse
from wamgr.status import Desired
from wamgr.store.db import Database
from wamgr.store.tenants import TenantStore

JID = "15550000001@s.whatsapp.net"


@pytest.fixture
def tenants(db: Database) -> TenantStore:
    """The tenants table, with tenants ``a`` and ``b`` wanted connected."""
    store = TenantStore(db)
    for tenant in ("a", "b"):
        store.set_desired(tenant, Desired.CONNECTED)
    return store


def test_of_20_concurrent_adds_of_one_tenant_exactly_one_creates_it(tenants) -> None:
    callers = 20
    start = threading.Barrier(callers)

    def add(_: int) -> bool:
        start.wait(timeout=10)
        return tenants.add("new")

    with ThreadPoolExecutor(callers) as pool:
        created = list(pool.map(add, range(callers)))

    assert created.count(True) == 1
    record = tenants.get("new")
    assert record is not None and record.desired is Desired.CONNECTED


def test_adding_a_known_tenant_changes_nothing(tenants) -> None:
    tenants.set_desired("t1", Desired.CONNECTED)
    tenants.set_desired("t1", Desired.STOPPED)

    assert tenants.add("t1") is False
    record = tenants.get("t1")
    assert record is not None and record.desired is Desired.STOPPED


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


def test_the_devices_of_a_batch_are_read_in_one_call(tenants) -> None:
    tenants.set_jid("a", JID)
    assert tenants.jids(["a", "b", "unknown"]) == {"a": JID, "b": None}
