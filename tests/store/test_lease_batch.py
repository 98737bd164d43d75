"""The batch grant of a claim pass (``LeaseStore.take_many``) against PostgreSQL."""

from __future__ import annotations

import threading

import pytest

from wamgr.store.db import Database
from wamgr.store.instances import InstanceStore
from wamgr.store.leases import Grant, LeaseStore


@pytest.fixture
def leases(database_url):
    db = Database(database_url, max_size=20)
    db.open()
    yield LeaseStore(db)
    db.close()


def _expire_soon(leases: LeaseStore, tenant: str, owner: str) -> int:
    token = leases.acquire(tenant, owner, 0.001)
    assert token is not None
    return token


def test_take_many_grants_free_and_expired_leases_and_names_the_holders_of_the_rest(leases):
    held = leases.acquire("held", "other", 30.0)
    expired = _expire_soon(leases, "expired", "other")
    ours = leases.acquire("ours", "me", 30.0)
    threading.Event().wait(0.05)  # the database clock must pass a millisecond

    batch = leases.take_many(["free", "held", "expired", "ours"], "me", 30.0)

    assert set(batch.granted) == {"free", "expired"}
    assert batch.granted["expired"].previous_owner == "other"
    assert batch.granted["free"].previous_owner is None
    assert batch.held == {"held": "other"}  # "ours" is undecided: it keeps its token
    assert leases.holder("held").token == held
    assert leases.holder("ours").token == ours
    for tenant in ("free", "expired"):
        lease = leases.holder(tenant)
        assert lease.owner == "me" and lease.token == batch.granted[tenant].token
    assert min(g.token for g in batch.granted.values()) > max(held, expired, ours)


def test_tokens_of_a_batch_grow_and_keep_growing_after_it(leases):
    batch = leases.take_many([f"t{i}" for i in range(20)], "me", 30.0)
    tokens = [batch.granted[f"t{i}"].token for i in range(20)]
    assert len(set(tokens)) == 20
    assert leases.acquire("later", "me", 30.0) > max(tokens)


def test_an_unexpired_lease_of_an_earlier_incarnation_is_held_elsewhere(leases):
    db = leases._db
    instances = InstanceStore(db)
    old = instances.claim("me", 0.2)
    assert LeaseStore(db, old).take("t1", "me", 30.0) is not None
    threading.Event().wait(0.3)  # the old claim expired: a new process takes the id over
    new = LeaseStore(db, instances.claim("me", 30.0))
    batch = new.take_many(["t1", "t2"], "me", 30.0)
    assert batch.held == {"t1": "me"} and set(batch.granted) == {"t2"}


def test_a_store_whose_instance_row_is_gone_grants_nothing(leases):
    db = leases._db
    instances = InstanceStore(db)
    claim = instances.claim("me", 30.0)
    bound = LeaseStore(db, claim)
    instances.release(claim)
    batch = bound.take_many(["t1"], "me", 30.0)
    assert batch.granted == {} and batch.held == {}
    assert leases.holder("t1") is None


def test_two_owners_taking_the_same_batch_at_once_never_share_a_lease(leases):
    tenants = [f"t{i:03d}" for i in range(200)]
    barrier = threading.Barrier(4)
    results: dict[str, dict[str, Grant]] = {}

    def take(owner: str) -> None:
        barrier.wait(5)
        results[owner] = leases.take_many(list(reversed(tenants)), owner, 30.0).granted

    threads = [threading.Thread(target=take, args=(f"o{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert len(results) == 4
    winners: dict[str, str] = {}
    for owner, granted in results.items():
        for tenant in granted:
            assert tenant not in winners, f"{tenant} granted to {winners.get(tenant)} and {owner}"
            winners[tenant] = owner
    assert sorted(winners) == tenants
    assert {lease.tenant_id: lease.owner for lease in leases.all()} == winners
