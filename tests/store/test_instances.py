"""Instance ids against PostgreSQL: one live process per id, and leases that belong to one
process incarnation, never to a name two processes could share (issue #13, defect 1)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC

import pytest

from wamgr.errors import InstanceIdInUse
from wamgr.store.db import Database
from wamgr.store.instances import InstanceClaim, InstanceStore
from wamgr.store.leases import LeaseStore, Renewed

#: Seconds of a claim that expires within a test (the database clock must pass it).
SHORT_TTL_S = 0.05


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url, max_size=20)
    database.open()
    yield database
    database.close()


@pytest.fixture
def instances(db: Database) -> InstanceStore:
    return InstanceStore(db)


def _expire(db: Database, claim: InstanceClaim) -> None:
    """Make ``claim``'s row expire now, as if its holder had stopped renewing a TTL ago."""
    with db.connection() as conn:
        conn.execute(
            "UPDATE wamgr_instances SET expires_at = now() - interval '1 second'"
            " WHERE instance_id = %s",
            (claim.instance_id,),
        )


def test_a_live_holder_refuses_a_second_claim_naming_host_pid_and_since(instances):
    first = instances.claim("gw-1", 30.0, host="web-1", pid=4242)

    with pytest.raises(InstanceIdInUse) as refused:
        instances.claim("gw-1", 30.0, host="web-2", pid=777)

    error = refused.value
    assert (error.instance_id, error.host, error.pid) == ("gw-1", "web-1", 4242)
    assert error.started_at == first.started_at
    message = error.format_message()
    assert "'gw-1'" in message and "pid 4242" in message and "host web-1" in message
    assert f"since {first.started_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC" in message
    assert "--instance-id" in message
    assert (error.exit_code, error.http_status) == (11, 409)


def test_concurrent_claims_of_one_id_leave_exactly_one_holder(instances):
    barrier = threading.Barrier(12)
    won: list[InstanceClaim] = []
    refused: list[InstanceIdInUse] = []

    def contend(pid: int) -> None:
        barrier.wait(5)
        try:
            won.append(instances.claim("gw-1", 30.0, pid=pid))
        except InstanceIdInUse as exc:
            refused.append(exc)

    threads = [threading.Thread(target=contend, args=(pid,)) for pid in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(won) == 1 and len(refused) == 11
    assert {exc.pid for exc in refused} == {won[0].pid}
    assert instances.holder("gw-1").incarnation == won[0].incarnation


def test_an_expired_holder_is_taken_over_and_a_released_id_is_free_at_once(instances):
    crashed = instances.claim("gw-1", SHORT_TTL_S, pid=1)
    threading.Event().wait(SHORT_TTL_S * 2)  # the crashed holder stops renewing

    successor = instances.claim("gw-1", 30.0, pid=2)

    assert successor.incarnation != crashed.incarnation
    assert not instances.release(crashed)  # the crashed one's release does nothing now
    assert instances.holder("gw-1").pid == 2
    assert instances.release(successor)
    assert instances.holder("gw-1") is None
    assert instances.claim("gw-1", 30.0, pid=3).pid == 3  # no wait after a clean stop


def test_a_second_incarnation_of_one_id_can_neither_take_nor_renew_the_firsts_leases(db, instances):
    first = instances.claim("gw-1", 30.0, pid=1)
    first_leases = LeaseStore(db, first)
    token = first_leases.acquire("t1", "gw-1", 30.0)
    _expire(db, first)  # first lost the database for a TTL; its lease is still live
    second = instances.claim("gw-1", 30.0, pid=2)
    second_leases = LeaseStore(db, second)

    assert second_leases.acquire("t1", "gw-1", 30.0) is None  # same name, not the same owner
    assert second_leases.renew("gw-1", {"t1": token}, 30.0) == Renewed(True, frozenset())
    # and the first, back, finds its instance id gone: it renews nothing, takes nothing
    assert first_leases.renew("gw-1", {"t1": token}, 30.0) == Renewed(False, frozenset())
    assert first_leases.acquire("t2", "gw-1", 30.0) is None
    assert LeaseStore(db).holder("t1").token == token


def test_a_lease_of_an_earlier_incarnation_is_taken_once_expired_naming_it(db, instances):
    first = instances.claim("gw-1", 30.0, pid=1)
    LeaseStore(db, first).acquire("t1", "gw-1", SHORT_TTL_S)
    assert instances.release(first)
    second = LeaseStore(db, instances.claim("gw-1", 30.0, pid=2))
    threading.Event().wait(SHORT_TTL_S * 2)

    grant = second.take("t1", "gw-1", 30.0)

    assert grant is not None
    assert grant.previous_owner == "gw-1"  # a predecessor: its late socket is not a rogue's
    assert second.take("t1", "gw-1", 30.0).previous_owner is None  # ours now


def test_a_renewal_keeps_the_instance_row_alive_with_or_without_leases(db, instances):
    claim = instances.claim("gw-1", SHORT_TTL_S)
    leases = LeaseStore(db, claim)

    assert leases.renew("gw-1", {}, 30.0) == Renewed(True, frozenset())
    threading.Event().wait(SHORT_TTL_S * 2)

    with pytest.raises(InstanceIdInUse):
        instances.claim("gw-1", 30.0)


def test_an_expired_but_untaken_claim_is_renewed_by_its_holder(db, instances):
    claim = instances.claim("gw-1", 30.0)
    leases = LeaseStore(db, claim)
    token = leases.acquire("t1", "gw-1", 30.0)
    _expire(db, claim)  # the database was unreachable for a TTL; nobody took the id

    assert leases.acquire("t2", "gw-1", 30.0) is None  # no grant on an expired claim
    assert leases.renew("gw-1", {"t1": token}, 30.0) == Renewed(True, frozenset({"t1"}))
    assert leases.acquire("t2", "gw-1", 30.0) is not None


def test_a_bound_store_takes_leases_only_for_its_own_instance_id(db, instances):
    leases = LeaseStore(db, instances.claim("gw-1", 30.0))

    with pytest.raises(ValueError, match="bound to instance 'gw-1'"):
        leases.acquire("t1", "gw-2", 30.0)


def test_release_owned_gives_up_only_this_incarnations_leases(db, instances):
    first = instances.claim("gw-1", 30.0, pid=1)
    LeaseStore(db, first).acquire("t1", "gw-1", 30.0)
    _expire(db, first)
    second = LeaseStore(db, instances.claim("gw-1", 30.0, pid=2))
    second.acquire("t2", "gw-1", 30.0)

    assert second.release_owned("gw-1", ["t1", "t2"]) == 1
    assert [lease.tenant_id for lease in LeaseStore(db).all()] == ["t1"]


def test_a_tool_without_an_instance_cannot_take_an_instances_live_lease(db, instances):
    LeaseStore(db, instances.claim("gw-1", 30.0)).acquire("t1", "gw-1", 30.0)

    assert LeaseStore(db).acquire("t1", "gw-1", 30.0) is None  # a name is not an incarnation
