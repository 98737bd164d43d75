"""LeaseKeeper on a virtual clock against real PostgreSQL: renewals, self-fencing, fenced writes."""

from __future__ import annotations

import contextlib
import threading
import time

import psycopg
import pytest
from dbproxy import frozen

from wamgr import TenantState
from wamgr.actors.leases import LeasesReleased
from wamgr.clock import SystemClock
from wamgr.store.db import Database
from wamgr.store.leases import LeaseStore
from wamgr.transport.base import CloseReason
from wamgr.transport.sim import SimNotConnected, SimWhatsApp

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


@pytest.mark.slow
def test_renewals_keep_a_lease_alive_past_its_ttl(make_manager, sim, clock, store, wait_until):
    mgr = make_manager(**TIMINGS)
    _connected(mgr, sim)
    for _ in range(6):  # 60 virtual seconds, a renewal every 10
        before = store.holder("t1").expires_at
        clock.advance(10.0)
        wait_until(lambda before=before: store.holder("t1").expires_at > before)
    assert mgr.status("t1").state is TenantState.CONNECTED
    assert sim.open_sockets() == 1


@pytest.mark.slow
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


def test_leases_released_by_a_stop_are_no_longer_renewed(
    make_manager, sim, clock, store, wait_until
):
    mgr = make_manager(**TIMINGS)
    for tenant in ("t1", "t2"):
        _connected(mgr, sim, tenant)
    before = {t: store.holder(t).expires_at for t in ("t1", "t2")}
    mgr.runtime.keeper.tell(LeasesReleased(("t1",)))
    clock.advance(10.0)  # a renewal
    wait_until(lambda: store.holder("t2").expires_at > before["t2"], what="t2 renewed")
    assert store.holder("t1").expires_at == before["t1"]
    assert mgr.status("t1").state is TenantState.CONNECTED  # not fenced: no longer watched


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


@pytest.mark.slow
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


@pytest.mark.slow
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


# --- the fence holds when the database stalls (issue #12) ----------------------------------

#: Short lease timings on the real clock, so a partition plays out in seconds.
SHORT = {
    "lease_ttl_s": 3.0,
    "renew_interval_s": 0.5,
    "renew_deadline_s": 2.0,
    "clock": SystemClock(),
}
#: Room for the keeper's deadline check and the test's polling.
SLACK_S = 0.8  # < lease_ttl - renew_deadline: a takeover would show


@pytest.mark.slow
def test_a_frozen_database_with_inbound_traffic_still_fences_by_the_deadline(
    db_proxy, make_manager, wait_until
):
    """Defect 2: the inbound path blocks the tenant's actor on the frozen database, and the
    keeper's fence still closes the socket by renew_deadline; B takes over, one socket."""
    sim = SimWhatsApp(auto_pair=True)  # the real clock: socket times are comparable
    first = make_manager(
        instance_id="A", database_url=db_proxy.database_url, transport=sim, **SHORT
    )
    first.connect("t1")
    jid = first.wait_for("t1", TenantState.CONNECTED, timeout=5).jid
    second = make_manager(instance_id="B", transport=sim, claim_interval_s=0.5, **SHORT)
    stop_writing = threading.Event()

    def customer() -> None:  # writes at once, then every 2 s
        while True:
            with contextlib.suppress(SimNotConnected):
                sim.inbound(jid, "15550002222@s.whatsapp.net", "are you there?")
            if stop_writing.wait(2.0):
                return

    writer = threading.Thread(target=customer, name="customer")
    with frozen(db_proxy):
        frozen_at = time.monotonic()
        writer.start()
        try:
            wait_until(lambda: sim.sockets(jid)[0].closed_at is not None, timeout=10)
            closed_after = sim.sockets(jid)[0].closed_at - frozen_at
            assert closed_after <= SHORT["renew_deadline_s"] + SLACK_S
            second.wait_for("t1", TenantState.CONNECTED, timeout=10)
        finally:
            stop_writing.set()
            writer.join(5)
    first.wait_for("t1", TenantState.STANDBY, timeout=10)
    assert sim.max_concurrent_sockets(jid) == 1
    assert second.status("t1").state is TenantState.CONNECTED


@pytest.mark.slow
def test_a_lease_table_stalled_while_both_instances_want_the_tenant(make_manager, database_url):
    """Defect 4 through the public API: the lease table stalls for 5 s while A re-takes its
    lease (after a drop) and B, arriving late, claims it too. Whatever answers the stalled
    statements bring, one socket at a time, and the tenant ends connected, not in conflict."""
    sim = SimWhatsApp(auto_pair=True)
    first = make_manager(instance_id="A", transport=sim, **SHORT)
    first.connect("t1")
    jid = first.wait_for("t1", TenantState.CONNECTED, timeout=5).jid
    sim.drop(jid, "network")
    retry_at = first.wait_for("t1", TenantState.BACKOFF, timeout=5).next_retry_at.timestamp()
    with psycopg.connect(database_url) as blocker:
        _sleep_until(retry_at - 0.8)
        # The row stalls (reads go on): A's retry queues on it first, B's claim behind it.
        blocker.execute("SELECT 1 FROM wamgr_leases WHERE tenant_id = 't1' FOR UPDATE")
        _sleep_until(retry_at + 3.3)  # A's retry waits on the table; its grant would expire
        second = make_manager(instance_id="B", transport=sim, claim_interval_s=0.5, **SHORT)
        _sleep_until(retry_at + 5.0)
        blocker.rollback()
    second.wait_for("t1", TenantState.CONNECTED, timeout=15)
    time.sleep(SHORT["lease_ttl_s"])  # long enough for a stale grant to do harm
    assert sim.max_concurrent_sockets(jid) == 1
    assert second.status("t1").state is TenantState.CONNECTED
    assert first.status("t1").state in (TenantState.STANDBY, TenantState.BACKOFF)


def _sleep_until(epoch_s: float) -> None:
    time.sleep(max(0.0, epoch_s - time.time()))
