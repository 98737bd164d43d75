"""LeaseKeeper on a virtual clock against real PostgreSQL: renewals, self-fencing, fenced writes."""

from __future__ import annotations

import psycopg
import pytest

from wamgr import TenantState
from wamgr.store.db import Database
from wamgr.store.leases import LeaseStore
from wamgr.transport.base import CloseReason

TIMINGS = {"lease_ttl_s": 30.0, "renew_interval_s": 10.0, "renew_deadline_s": 20.0}


@pytest.fixture
def store(database_url):
    db = Database(database_url, max_size=3)
    db.open()
    yield LeaseStore(db)
    db.close()


def _connected(mgr, sim, tenant="t1"):
    mgr.connect(tenant)
    return mgr.wait_for(tenant, TenantState.CONNECTED, timeout=5).jid


def test_renewals_keep_a_lease_alive_past_its_ttl(make_manager, sim, clock, store, wait_until):
    mgr = make_manager(**TIMINGS)
    _connected(mgr, sim)
    for _ in range(6):  # 60 virtual seconds, a renewal every 10
        before = store.holder("t1").expires_at
        clock.advance(10.0)
        wait_until(lambda before=before: store.holder("t1").expires_at > before)
    assert mgr.status("t1").state is TenantState.CONNECTED
    assert sim.open_sockets() == 1


def test_no_renewal_for_renew_deadline_closes_links_before_the_ttl(
    make_manager, sim, clock, database_url
):
    mgr = make_manager(**TIMINGS)
    jid = _connected(mgr, sim)
    granted_at = clock.monotonic()
    with psycopg.connect(database_url) as blocker:
        # Every renewal now hangs on this lock (reads, and so status writes, still work).
        blocker.execute("LOCK TABLE wamgr_leases IN EXCLUSIVE MODE")
        clock.advance(10.0)  # the renewal is sent ... and hangs
        assert mgr.status("t1").state is TenantState.CONNECTED
        clock.advance(9.0)
        assert mgr.status("t1").state is TenantState.CONNECTED
        clock.advance(1.0)  # 20 s since the grant was sent: fence
        status = mgr.wait_for("t1", TenantState.STANDBY, timeout=5)
        blocker.rollback()
    record = sim.sockets(jid)[-1]
    assert record.close_reason is CloseReason.REQUESTED
    assert record.closed_at - granted_at < TIMINGS["lease_ttl_s"]
    assert sim.logouts(jid) == 0
    assert status.last_error.startswith("lease lost")
    assert not mgr.is_connection_active("t1")


def test_a_renewal_that_finds_the_lease_gone_fences_at_once(make_manager, sim, clock, store):
    mgr = make_manager(**TIMINGS)
    jid = _connected(mgr, sim)
    store.clear("t1")
    assert store.acquire("t1", "intruder", 30.0) is not None
    clock.advance(10.0)
    mgr.wait_for("t1", TenantState.STANDBY, timeout=5)
    assert sim.open_sockets(jid) == 0
    clock.advance(3600.0)  # and it never comes back on its own while the intruder holds it
    assert sim.dial_attempts("t1") == 1


def test_renew_reports_a_lost_lease_as_missing(store):
    mine = store.acquire("a", "me", 30.0)
    theirs_before = store.acquire("b", "me", 30.0)
    store.clear("b")
    store.acquire("b", "them", 30.0)
    renewed = store.renew("me", {"a": mine, "b": theirs_before}, 30.0, timeout_s=5.0)
    assert renewed == {"a"}
    assert store.holder("b").owner == "them"


def test_a_standby_instance_never_overwrites_the_holders_status(make_manager, sim, database_url):
    first = make_manager(instance_id="first")
    _connected(first, sim)
    second = make_manager(instance_id="second")
    assert second.connect("t1").state is TenantState.STANDBY
    assert second.runtime.writer.flush(5) and first.runtime.writer.flush(5)
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT state, owner FROM wamgr_tenants WHERE tenant_id = 't1'"
        ).fetchone()
    assert row == ("connected", "first")
    assert second.status("t1").state is TenantState.STANDBY  # its own view
    assert sim.max_concurrent_sockets() == 1


def test_replaced_by_the_leases_new_holder_is_standby_not_conflict(make_manager, sim, store):
    first = make_manager(instance_id="first")
    jid = _connected(first, sim)
    store.clear("t1")  # as if first had been paused past its TTL
    second = make_manager(instance_id="second")
    second.connect("t1")
    second.wait_for("t1", TenantState.CONNECTED, timeout=5)
    status = first.wait_for("t1", TenantState.STANDBY, timeout=5)
    assert status.state is TenantState.STANDBY  # not conflict: second is no rogue
    assert sim.collisions(jid) == 1  # the one a paused owner cannot prevent
    assert sim.open_sockets(jid) == 1
