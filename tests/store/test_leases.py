"""The lease statements against PostgreSQL, and the bounds on the sessions that run them."""

from __future__ import annotations

import contextlib
import threading
import time

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from wamgr.errors import DatabaseUnavailable, WamgrError
from wamgr.store.db import Database, SessionLimits
from wamgr.store.instances import InstanceStore
from wamgr.store.leases import LeaseStore, Renewed


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
    me = LeaseStore(leases._db, InstanceStore(leases._db).claim("me", 30.0))
    mine = me.acquire("a", "me", 30.0)
    theirs_before = me.acquire("b", "me", 30.0)
    leases.clear("b")
    leases.acquire("b", "them", 30.0)
    renewed = me.renew("me", {"a": mine, "b": theirs_before}, 30.0)
    assert renewed == Renewed(instance_held=True, tenants=frozenset({"a"}))
    assert leases.holder("b").owner == "them"


def test_take_names_the_other_owner_it_took_an_expired_lease_from(leases):
    first = leases.take("t1", "a", 0.001)
    assert first is not None and first.previous_owner is None  # a new row
    threading.Event().wait(0.05)
    again = leases.take("t1", "a", 30.0)
    assert again.previous_owner is None  # ours already
    threading.Event().wait(0.05)
    assert leases.take("t1", "b", 30.0) is None  # held
    leases.clear("t1")
    leases.acquire("t1", "a", 0.001)
    threading.Event().wait(0.05)
    taken = leases.take("t1", "b", 30.0)
    assert taken.previous_owner == "a" and taken.token > again.token


# --- sessions hold no lease row across a stall (issue #12, defect 3) -----------------------

SHORT_LIMITS = SessionLimits(
    statement_timeout_s=2.0, lock_timeout_s=0.5, idle_in_transaction_s=1.0, tcp_user_timeout_s=2.0
)


@pytest.fixture
def through_proxy(db_proxy):
    """A LeaseStore of instance "A" whose every statement goes through the freezable proxy
    (default bounds: its statements may wait on a lock for a while)."""
    db = Database(db_proxy.database_url, max_size=3)
    db.open()
    yield LeaseStore(db, InstanceStore(db).claim("A", 30.0))
    db_proxy.thaw()
    db.close()


def _backend_waiting_on_a_lock(database_url: str) -> bool:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND query LIKE '%UPDATE wamgr_leases%'"
        ).fetchone()
    return bool(row and row[0])


@pytest.mark.slow
def test_a_renewal_paused_before_its_answer_holds_no_lock(
    db_proxy, through_proxy, leases, database_url, wait_until
):
    """A's renewal waits on a row lock; A 'pauses' (its connection freezes); the lock goes and
    the renewal runs. It must be committed by then: B takes the expired lease over at once."""
    token = through_proxy.acquire("t1", "A", 1.0)
    renewing = threading.Thread(
        target=_quietly, args=(through_proxy.renew, "A", {"t1": token}, 1.0), daemon=True
    )
    with psycopg.connect(database_url) as blocker:
        blocker.execute("SELECT 1 FROM wamgr_leases WHERE tenant_id = 't1' FOR UPDATE")
        renewing.start()
        wait_until(lambda: _backend_waiting_on_a_lock(database_url), what="the renewal to wait")
        db_proxy.freeze()  # A is paused: it sees no answer, it sends no COMMIT
        blocker.rollback()  # the renewal runs now
    threading.Event().wait(1.2)  # the lease (renewed or not) expires
    taken: list[int | None] = []
    taker = threading.Thread(target=lambda: taken.append(leases.acquire("t1", "B", 30.0)))
    taker.start()
    taker.join(5)
    assert taken and taken[0] is not None, "B waited behind A's lease row"
    assert leases.holder("t1").owner == "B"


def _quietly(call, *args):
    with contextlib.suppress(WamgrError):
        call(*args)


@pytest.mark.slow
def test_a_session_paused_inside_a_transaction_frees_its_locks(db_proxy, database_url, leases):
    """A wamgr session frozen inside a transaction that holds a lease row is ended by the
    server (idle_in_transaction_session_timeout); meanwhile an acquire gives up on the
    locked row (lock_timeout) instead of waiting behind it."""
    db = Database(db_proxy.database_url, max_size=2, limits=SHORT_LIMITS)
    db.open()
    try:
        LeaseStore(db).acquire("t1", "A", 0.001)
        with db.connection() as conn:
            conn.execute("BEGIN")
            conn.execute("SELECT 1 FROM wamgr_leases WHERE tenant_id = 't1' FOR UPDATE")
            db_proxy.freeze()  # paused mid-transaction
            impatient = Database(database_url, max_size=2, limits=SHORT_LIMITS)
            impatient.open()
            try:
                started = time.monotonic()
                with pytest.raises(DatabaseUnavailable, match="lock timeout"):
                    LeaseStore(impatient).acquire("t1", "B", 30.0)
                assert time.monotonic() - started < 2.0
            finally:
                impatient.close()
            threading.Event().wait(SHORT_LIMITS.idle_in_transaction_s + 0.5)
            assert leases.acquire("t1", "B", 30.0) is not None  # the session is gone
            db_proxy.thaw()
            with pytest.raises(psycopg.errors.IdleInTransactionSessionTimeout):
                conn.execute("SELECT 1")  # A finds its session ended, its work undone
    finally:
        db_proxy.thaw()
        db.close()


def test_every_session_carries_the_bounds(database_url):
    db = Database(database_url, max_size=1, limits=SHORT_LIMITS)
    db.open()
    try:
        with db.connection() as conn:
            shown = {
                name: conn.execute(f"SHOW {name}").fetchone()[0]
                for name in (
                    "statement_timeout",
                    "lock_timeout",
                    "idle_in_transaction_session_timeout",
                )
            }
    finally:
        db.close()
    assert shown == {
        "statement_timeout": "2s",
        "lock_timeout": "500ms",
        "idle_in_transaction_session_timeout": "1s",
    }


def test_options_of_the_url_are_kept_and_win(database_url):
    url = make_conninfo(database_url, options="-c lock_timeout=7s -c application_name=mine")
    db = Database(url, max_size=1, limits=SHORT_LIMITS)
    db.open()
    try:
        with db.connection() as conn:
            lock_timeout = conn.execute("SHOW lock_timeout").fetchone()[0]
            name = conn.execute("SHOW application_name").fetchone()[0]
            statement_timeout = conn.execute("SHOW statement_timeout").fetchone()[0]
    finally:
        db.close()
    assert (lock_timeout, name, statement_timeout) == ("7s", "mine", "2s")


@pytest.mark.slow
def test_a_statement_longer_than_the_bound_is_cancelled(database_url):
    db = Database(database_url, max_size=1, limits=SHORT_LIMITS)
    db.open()
    try:
        with pytest.raises(DatabaseUnavailable, match="statement timeout"), db.connection() as conn:
            conn.execute("SELECT pg_sleep(%s)", (SHORT_LIMITS.statement_timeout_s + 1,))
    finally:
        db.close()


def test_the_bounds_sit_below_the_fence():
    limits = SessionLimits.below_fence(renew_interval_s=10, renew_deadline_s=20, call_timeout_s=10)
    assert limits.statement_timeout_s == 10 and limits.lock_timeout_s == 5
    short = SessionLimits.below_fence(renew_interval_s=0.5, renew_deadline_s=2, call_timeout_s=10)
    assert short.statement_timeout_s == 1.5 and short.idle_in_transaction_s == 1.5


def test_release_owned_never_waits_on_rows_a_renewal_locks_and_frees_them_after(
    leases, database_url
):
    for tenant in ("t1", "t2", "t3"):
        leases.acquire(tenant, "me", 30.0)
    freed: list[int] = []
    with psycopg.connect(database_url) as renewal:  # a renewal under way holds t2's row
        renewal.execute("SELECT 1 FROM wamgr_leases WHERE tenant_id = 't2' FOR UPDATE")
        releasing = threading.Thread(
            target=lambda: freed.append(leases.release_owned("me", ["t1", "t2", "t3"]))
        )
        releasing.start()
        deadline = time.monotonic() + 5
        while {lease.tenant_id for lease in leases.all()} != {"t2"}:
            assert time.monotonic() < deadline, leases.all()
            time.sleep(0.01)
        assert releasing.is_alive()  # it passes again for t2, not waiting on its lock
        renewal.rollback()
    releasing.join(5)
    assert freed == [3] and leases.all() == []


def test_release_owned_gives_up_on_a_locked_row_once_its_time_is_spent(leases, database_url):
    for tenant in ("t1", "t2"):
        leases.acquire(tenant, "me", 30.0)
    with psycopg.connect(database_url) as renewal:  # a renewal that never finishes
        renewal.execute("SELECT 1 FROM wamgr_leases WHERE tenant_id = 't2' FOR UPDATE")
        began = time.monotonic()
        freed = leases.release_owned("me", ["t1", "t2"], within_s=0.1)
        took = time.monotonic() - began
        renewal.rollback()
    assert freed == 1 and [lease.tenant_id for lease in leases.all()] == ["t2"]
    assert took < 0.6, f"release_owned made passes for {took:.2f} s"
