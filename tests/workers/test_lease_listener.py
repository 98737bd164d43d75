"""The freed-lease listener: another instance's release wakes the claim loop at once (our own
does not), the release and its NOTIFY are one statement, and stop does not wait for a
notification; a stopping manager's tenants are claimed by the next without a claim pass."""

from __future__ import annotations

import queue

import pytest

from wamgr import TenantState
from wamgr.store.db import Database
from wamgr.store.leases import LeaseStore
from wamgr.workers.lease_listener import FreedLeaseListener

WAIT_S = 5.0


@pytest.fixture
def leases(db: Database) -> LeaseStore:
    return LeaseStore(db)


def _listener(leases: LeaseStore, url: str, woken: queue.SimpleQueue) -> FreedLeaseListener:
    return FreedLeaseListener(leases, url, "me", lambda: woken.put("woken"))


def test_another_instances_release_wakes_at_once_and_ours_does_not(leases, database_url):
    woken: queue.SimpleQueue[str] = queue.SimpleQueue()
    listener = _listener(leases, database_url, woken)
    listener.start()
    try:
        assert listener.wait_listening(WAIT_S)
        leases.acquire("t1", "me", 30)
        leases.acquire("t2", "other", 30)
        assert leases.release_owned("me", ["t1"]) == 1  # ours: the claim loop is not woken
        assert leases.release_owned("other", ["nobody"]) == 0  # nothing freed: no NOTIFY
        assert leases.release_owned("other", ["t2"]) == 1
        assert woken.get(timeout=WAIT_S) == "woken"
        assert woken.empty()
        assert leases.all() == []
    finally:
        assert listener.stop(WAIT_S)  # the wait is a minute: stop's NOTIFY ends it


@pytest.mark.slow
def test_the_listener_listens_again_after_its_connection_broke(
    leases, db, database_url, wait_until
):
    woken: queue.SimpleQueue[str] = queue.SimpleQueue()
    listener = _listener(leases, database_url, woken)
    listener.start()

    def freed_and_woken() -> bool:
        leases.acquire("t", "other", 30)
        leases.release_owned("other", ["t"])
        try:
            return woken.get(timeout=0.1) == "woken"
        except queue.Empty:
            return False

    try:
        assert listener.wait_listening(WAIT_S)
        with db.connection() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE query = 'LISTEN wamgr_leases_freed'"
            )
        wait_until(freed_and_woken, timeout=WAIT_S, what="the listener to listen again")
    finally:
        assert listener.stop(WAIT_S)


def test_a_stopping_manager_hands_its_tenants_over_without_a_claim_pass(make_manager, sim):
    first = make_manager(instance_id="first")
    first.connect("t1")
    first.wait_for("t1", TenantState.CONNECTED, timeout=WAIT_S)
    second = make_manager(instance_id="second")  # claim passes an hour apart
    assert second.runtime.freed is not None
    assert second.runtime.freed.wait_listening(WAIT_S)
    assert second.connect("t1").state is TenantState.STANDBY
    first.stop()
    status = second.wait_for("t1", TenantState.CONNECTED, timeout=WAIT_S)
    assert status.owner == "second"
    assert sim.max_concurrent_sockets() == 1
