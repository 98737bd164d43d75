"""The status feed: a write on any instance reaches the subscribers as one batch, a
subscriber that fails does not stop the others, a broken connection is re-opened (and the
subscribers told that anything may have changed), and stop does not wait for the poll."""

from __future__ import annotations

import queue
import time

import pytest

from wamgr.status import Desired, TenantState, TenantStatus
from wamgr.store.db import Database
from wamgr.store.status_feed import Changed
from wamgr.store.tenants import TenantStore
from wamgr.workers.status_feed import StatusFeed

WAIT_S = 5.0


def _write(tenants: TenantStore, *ids: str) -> None:
    for tenant in ids:
        tenants.set_desired(tenant, Desired.CONNECTED)
    tenants.write_statuses(
        [(TenantStatus(t, TenantState.CONNECTED, owner="inst-1"), None) for t in ids], "inst-1"
    )


def test_writes_reach_every_subscriber_and_a_failing_one_is_contained(
    db: Database, database_url: str, logs
) -> None:
    tenants = TenantStore(db)
    got: queue.SimpleQueue[Changed] = queue.SimpleQueue()
    feed = StatusFeed(db, database_url)

    def failing(_: Changed) -> None:
        raise RuntimeError("subscriber bug")

    feed.subscribe(failing)
    feed.subscribe(got.put)
    feed.start()
    try:
        assert feed.wait_listening(WAIT_S)
        _write(tenants, "a", "b")
        assert got.get(timeout=WAIT_S) == frozenset({"a", "b"})
        _write(tenants, "c")
        assert got.get(timeout=WAIT_S) == frozenset({"c"})
    finally:
        assert feed.stop(WAIT_S)
    assert any("a status feed subscriber failed" in line for line in logs)


def test_an_unsubscribed_callback_is_not_called(db: Database, database_url: str) -> None:
    tenants = TenantStore(db)
    gone: queue.SimpleQueue[Changed] = queue.SimpleQueue()
    kept: queue.SimpleQueue[Changed] = queue.SimpleQueue()
    feed = StatusFeed(db, database_url)
    unsubscribe = feed.subscribe(gone.put)
    feed.subscribe(kept.put)
    unsubscribe()
    feed.start()
    try:
        assert feed.wait_listening(WAIT_S)
        _write(tenants, "a")
        assert kept.get(timeout=WAIT_S) == frozenset({"a"})
        assert gone.empty()
    finally:
        feed.stop(WAIT_S)


@pytest.mark.slow
def test_a_broken_connection_is_reopened_and_everything_may_have_changed(
    db: Database, database_url: str
) -> None:
    tenants = TenantStore(db)
    got: queue.SimpleQueue[Changed] = queue.SimpleQueue()
    feed = StatusFeed(db, database_url)
    feed.subscribe(got.put)
    feed.start()
    try:
        assert feed.wait_listening(WAIT_S)
        with db.connection() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND query = 'LISTEN wamgr_status'"
            )
        assert got.get(timeout=WAIT_S) is None  # re-opened: read everything again
        _write(tenants, "a")
        assert got.get(timeout=WAIT_S) == frozenset({"a"})
    finally:
        feed.stop(WAIT_S)


def test_stop_ends_the_wait_at_once(db: Database, database_url: str) -> None:
    feed = StatusFeed(db, database_url)
    feed.start()
    assert feed.wait_listening(WAIT_S)
    started = time.monotonic()
    assert feed.stop(WAIT_S)
    assert time.monotonic() - started < 1.0
