"""Database.connection: a connection that just worked is lent without a ping; one that is
stale, failed, or lent while the database is failing is pinged first, and a broken one is
replaced without the caller seeing it."""

from __future__ import annotations

import psycopg
import psycopg_pool
import pytest

from wamgr.errors import DatabaseUnavailable
from wamgr.store import db as db_module
from wamgr.store.db import Database


@pytest.fixture
def pings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The backend pid of every connection pinged before it was lent."""
    seen: list[int] = []
    check = psycopg_pool.ConnectionPool.check_connection

    def counting(conn: psycopg.Connection) -> None:
        seen.append(conn.info.backend_pid)
        check(conn)

    monkeypatch.setattr(psycopg_pool.ConnectionPool, "check_connection", staticmethod(counting))
    return seen


@pytest.fixture
def one(database_url: str):
    """A pool of one connection, so every checkout lends the same one."""
    database = Database(database_url, min_size=1, max_size=1)
    database.open()
    yield database
    database.close()


def _pid(db: Database) -> int:
    with db.connection() as conn:
        return int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])


def test_a_connection_that_just_worked_is_lent_again_without_a_ping(one, pings):
    first = _pid(one)
    assert pings == [first]  # never used: pinged
    assert _pid(one) == first and _pid(one) == first
    assert pings == [first]  # fresh: no ping, no extra round trip


def test_a_stale_connection_is_pinged(one, pings, monkeypatch):
    monkeypatch.setattr(db_module, "FRESH_S", 0.0)
    first = _pid(one)
    _pid(one)
    assert pings == [first, first]


def test_after_a_failed_statement_the_connection_is_pinged_again(one, pings):
    first = _pid(one)
    with pytest.raises(psycopg.errors.DivisionByZero), one.connection() as conn:
        conn.execute("SELECT 1 / 0")
    assert _pid(one) == first
    assert pings == [first, first]


def test_a_fresh_connection_cut_meanwhile_fails_once_then_the_pool_recovers(
    one, pings, database_url
):
    first = _pid(one)
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (first,))
    with pytest.raises(DatabaseUnavailable):  # lent unpinged: the statement finds it cut
        _pid(one)
    assert one.failing
    second = _pid(one)  # failing: pinged, replaced, works
    assert second != first and not one.failing
