"""The lease statements against PostgreSQL."""

from __future__ import annotations

import threading

import pytest

from wamgr.store.db import Database
from wamgr.store.leases import LeaseStore


@pytest.fixture
def leases(database_url):
    db = Database(database_url, max_size=20)
    db.open()
    yield LeaseStore(db)
    db.close()


def test_concurrent_acquire_from_many_threads_grants_exactly_one(leases):
    barrier = threading.Barrier(16)
    results: dict[str, int | None] = {}

    def contend(owner: str) -> None:
        barrier.wait(5)
        results[owner] = leases.acquire("t1", owner, 30.0)

    threads = [threading.Thread(target=contend, args=(f"o{i}",)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    winners = [owner for owner, token in results.items() if token is not None]
    assert len(results) == 16
    assert len(winners) == 1
    assert leases.holder("t1").owner == winners[0]


def test_tokens_grow_with_every_grant(leases):
    first = leases.acquire("t1", "a", 30.0)
    again = leases.acquire("t1", "a", 30.0)  # same owner may re-take it
    other = leases.acquire("t2", "b", 30.0)
    assert first < again < other


def test_a_held_lease_is_refused_and_an_expired_one_taken_over(leases):
    assert leases.acquire("t1", "a", 30.0) is not None
    assert leases.acquire("t1", "b", 30.0) is None
    assert leases.acquire("t2", "a", 0.001) is not None
    threading.Event().wait(0.05)  # the database clock must pass a millisecond
    assert leases.acquire("t2", "b", 30.0) is not None
    assert leases.holder("t2").owner == "b"


def test_release_by_a_stale_token_does_nothing(leases):
    stale = leases.acquire("t1", "a", 0.001)
    threading.Event().wait(0.05)
    fresh = leases.acquire("t1", "b", 30.0)
    assert not leases.release("t1", stale)
    assert leases.holder("t1").token == fresh
    assert leases.release("t1", fresh)
    assert leases.holder("t1") is None


def test_clear_one_or_all(leases):
    for tenant in ("a", "b", "c"):
        leases.acquire(tenant, "x", 30.0)
    assert leases.clear("a") == 1
    assert [lease.tenant_id for lease in leases.all()] == ["b", "c"]
    assert leases.clear() == 2
    assert leases.all() == []


def test_renew_reports_a_lost_lease_as_missing(leases):
    mine = leases.acquire("a", "me", 30.0)
    theirs_before = leases.acquire("b", "me", 30.0)
    leases.clear("b")
    leases.acquire("b", "them", 30.0)
    renewed = leases.renew("me", {"a": mine, "b": theirs_before}, 30.0)
    assert renewed == {"a"}
    assert leases.holder("b").owner == "them"
