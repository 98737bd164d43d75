"""The reply listener: a reply's NOTIFY wakes the waiter of that call only, waiters are woken
when the listening connection comes back, and stop ends the wait at once."""

from __future__ import annotations

import time

import pytest

from wamgr.store.calls import CallStore
from wamgr.store.db import Database
from wamgr.store.leases import LeaseStore
from wamgr.workers.reply_listener import ReplyListener

WAIT_S = 5.0


@pytest.fixture
def calls(db: Database) -> CallStore:
    return CallStore(db)


@pytest.fixture
def listener(calls, database_url):
    replies = ReplyListener(calls, database_url)
    replies.start()
    assert replies.wait_listening(WAIT_S)
    yield replies
    replies.stop(WAIT_S)


def _answered(calls: CallStore, db: Database, call_id: str) -> None:
    """A call from ``b`` to the holder ``a``, taken and answered."""
    LeaseStore(db).acquire("t1", "a", 60.0)
    calls.send(call_id, "t1", "qr", {}, sender="b", timeout_s=5)
    calls.take("a")
    calls.reply(call_id, {"ok": None})


def test_a_reply_wakes_its_waiter_and_no_other(listener, calls, db):
    mine = listener.expect("00000000-0000-4000-8000-000000000001")
    other = listener.expect("00000000-0000-4000-8000-000000000002")

    _answered(calls, db, "00000000-0000-4000-8000-000000000001")

    assert mine.wait(WAIT_S)
    assert not other.is_set()
    assert calls.collect("00000000-0000-4000-8000-000000000001") == {"ok": None}


@pytest.mark.slow
def test_waiters_are_woken_when_the_connection_comes_back(listener, db, wait_until):
    waiter = listener.expect("00000000-0000-4000-8000-000000000003")
    with db.connection() as conn:  # a reply may have come while nobody listened
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query = 'LISTEN wamgr_replies'"
        )

    assert waiter.wait(WAIT_S)
    wait_until(lambda: listener.wait_listening(0), what="the listener to listen again")


def test_stop_ends_the_wait_at_once_and_wakes_every_waiter(calls, database_url):
    replies = ReplyListener(calls, database_url)
    replies.start()
    assert replies.wait_listening(WAIT_S)
    waiter = replies.expect("00000000-0000-4000-8000-000000000004")

    started = time.monotonic()
    assert replies.stop(WAIT_S)

    assert time.monotonic() - started < 2.0
    assert waiter.is_set() and replies.stopping
