"""connect()'s one statement (``ConnectGrants.want``) against PostgreSQL: the wish recorded,
the device and proxy read, and the lease taken under the batch grant's rules."""

from __future__ import annotations

import threading

from wamgr.status import Desired
from wamgr.store.connect_grant import ConnectGrants
from wamgr.store.instances import InstanceStore
from wamgr.store.leases import LeaseStore
from wamgr.store.tenant_settings import TenantSettingsStore
from wamgr.store.tenants import TenantStore
from wamgr.tenant_settings import TenantSettings

PROXY = "socks5://u:p@10.0.0.9:1080"


def _grants(db, owner: str = "me") -> ConnectGrants:
    claim = InstanceStore(db).claim(owner, 30.0)
    return ConnectGrants(db, TenantStore(db), LeaseStore(db, claim), owner, 30.0)


def test_a_new_tenant_is_created_wanted_connected_and_granted_its_lease(db) -> None:
    wanted = _grants(db).want("t1")

    record = TenantStore(db).get("t1")
    assert record is not None and record.desired is Desired.CONNECTED
    grant = wanted.batch.granted["t1"]
    assert grant.previous_owner is None
    lease = LeaseStore(db).holder("t1")
    assert lease is not None and lease.owner == "me" and lease.token == grant.token
    assert wanted.batch.held == {} and wanted.jid is None and wanted.proxy is None


def test_a_stopped_tenant_is_wanted_again_and_its_device_and_proxy_are_read(db) -> None:
    tenants = TenantStore(db)
    tenants.add("t1")
    tenants.set_jid("t1", "4915100000001@s.whatsapp.net")
    TenantSettingsStore(db).put("t1", TenantSettings(proxy=PROXY))
    tenants.set_desired("t1", Desired.STOPPED)

    wanted = _grants(db).want("t1")

    assert tenants.get("t1").desired is Desired.CONNECTED
    assert wanted.jid == "4915100000001@s.whatsapp.net" and wanted.proxy == PROXY
    assert "t1" in wanted.batch.granted


def test_a_lease_held_by_another_live_instance_is_named_not_taken(db) -> None:
    other = LeaseStore(db).acquire("t1", "other", 30.0)

    wanted = _grants(db).want("t1")

    assert wanted.batch.granted == {} and wanted.batch.held == {"t1": "other"}
    assert LeaseStore(db).holder("t1").token == other


def test_an_expired_lease_is_taken_over_naming_its_holder(db) -> None:
    old = LeaseStore(db).acquire("t1", "other", 0.001)
    threading.Event().wait(0.05)  # the database clock must pass a millisecond

    grant = _grants(db).want("t1").batch.granted["t1"]

    assert grant.previous_owner == "other" and grant.token > old


def test_a_lease_that_is_ours_already_keeps_its_token_and_is_left_undecided(db) -> None:
    grants = _grants(db)
    first = grants.want("t1").batch.granted["t1"]

    again = grants.want("t1").batch

    assert again.granted == {} and again.held == {}  # the tenant's own take decides it
    assert LeaseStore(db).holder("t1").token == first.token


def test_without_its_instance_row_nothing_is_granted_but_the_wish_is_recorded(db) -> None:
    instances = InstanceStore(db)
    claim = instances.claim("me", 30.0)
    grants = ConnectGrants(db, TenantStore(db), LeaseStore(db, claim), "me", 30.0)
    instances.release(claim)

    wanted = grants.want("t1")

    assert wanted.batch.granted == {} and wanted.batch.held == {}
    assert LeaseStore(db).holder("t1") is None
    assert TenantStore(db).get("t1").desired is Desired.CONNECTED


def test_give_back_releases_only_that_grant(db) -> None:
    grants = _grants(db)
    grant = grants.want("t1").batch.granted["t1"]
    grants.give_back("t1", grant)
    assert LeaseStore(db).holder("t1") is None

    newer = grants.want("t1").batch.granted["t1"]
    grants.give_back("t1", grant)  # the old token: the newer grant stays
    assert LeaseStore(db).holder("t1").token == newer.token


def test_want_only_records_the_wish_and_takes_nothing(db) -> None:
    TenantStore(db).add("t1")
    TenantStore(db).set_desired("t1", Desired.STOPPED)

    _grants(db).want_only("t1")

    assert TenantStore(db).get("t1").desired is Desired.CONNECTED
    assert LeaseStore(db).holder("t1") is None
