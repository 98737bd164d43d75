"""wamgr_calls: a call goes to the live lease holder only, one taker gets it, its reply wakes
the asker's channel, and nothing is left behind."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from wamgr.store.calls import CallStore, ReplyChannel
from wamgr.store.commands import CommandChannel
from wamgr.store.db import Database
from wamgr.store.leases import LeaseStore

WAIT_S = 5.0


@pytest.fixture
def calls(db: Database) -> CallStore:
    return CallStore(db)


def _held(db: Database, tenant_id: str, owner: str) -> None:
    assert LeaseStore(db).acquire(tenant_id, owner, 60.0) is not None


def _id() -> str:
    return str(uuid.uuid4())


def test_a_call_goes_only_to_another_live_holder(calls, db):
    assert calls.send(_id(), "t1", "qr", {}, sender="a", timeout_s=5) is None  # nobody holds it
    _held(db, "t1", "a")
    assert calls.send(_id(), "t1", "qr", {}, sender="a", timeout_s=5) is None  # the sender does
    assert calls.take("a") == []

    call_id = _id()
    assert calls.send(call_id, "t1", "send_text", {"to": "1"}, sender="b", timeout_s=5) == "a"

    [taken] = calls.take("a")
    assert (taken.id, taken.tenant_id, taken.kind, taken.args, taken.sender) == (
        call_id, "t1", "send_text", {"to": "1"}, "b",
    )  # fmt: skip
    assert 0 < taken.left_s <= 5
    assert calls.take("a") == []  # taken once


def test_the_send_wakes_the_holders_command_channel(calls, db, database_url):
    _held(db, "t1", "a")
    channel = CommandChannel(database_url, "a", connect_timeout_s=5)
    try:
        calls.send(_id(), "t1", "qr", {}, sender="b", timeout_s=5)
        assert channel.wait(WAIT_S)
    finally:
        channel.close()


def test_concurrent_takers_never_get_the_same_call(calls, db):
    _held(db, "t1", "a")
    sent = {_id() for _ in range(50)}
    for call_id in sent:
        calls.send(call_id, "t1", "qr", {}, sender="b", timeout_s=5)

    with ThreadPoolExecutor(8) as pool:
        batches = list(pool.map(lambda _: calls.take("a"), range(16)))

    taken = [call.id for batch in batches for call in batch]
    assert sorted(taken) == sorted(sent)


def test_a_reply_wakes_the_reply_channel_and_is_collected_once(calls, db, database_url):
    _held(db, "t1", "a")
    call_id = _id()
    calls.send(call_id, "t1", "qr", {}, sender="b", timeout_s=5)
    calls.take("a")
    channel = ReplyChannel(database_url, connect_timeout_s=5)
    try:
        assert calls.collect(call_id) is None  # not answered yet: the row stays

        assert calls.reply(call_id, {"ok": "QR-1"})

        assert next(channel.payloads(WAIT_S)) == call_id
    finally:
        channel.close()
    assert not calls.reply(call_id, {"ok": "again"})  # answered once
    assert calls.collect(call_id) == {"ok": "QR-1"}
    assert calls.collect(call_id) is None  # the row is gone


def test_an_abandoned_call_takes_no_late_reply_and_leaves_no_row(calls, db):
    _held(db, "t1", "a")
    call_id = _id()
    calls.send(call_id, "t1", "qr", {}, sender="b", timeout_s=5)
    calls.take("a")

    assert calls.abandon(call_id) is None

    assert not calls.reply(call_id, {"ok": "late"})
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM wamgr_calls").fetchone()[0] == 0


def test_calls_past_their_deadline_are_not_taken_and_stale_ones_are_dropped(calls, db):
    _held(db, "t1", "a")
    calls.send(_id(), "t1", "qr", {}, sender="b", timeout_s=-1)  # its asker gave up already
    calls.send(_id(), "t1", "qr", {}, sender="b", timeout_s=-3600)  # and long ago

    assert calls.take("a") == []
    assert calls.drop_stale() == 1  # only the one well past its deadline


def test_the_wake_notification_reaches_a_reply_channel(calls, database_url):
    channel = ReplyChannel(database_url, connect_timeout_s=5)
    try:
        calls.wake_replies()
        assert next(channel.payloads(WAIT_S)) == ""
    finally:
        channel.close()
