"""The durable outbound queue through the manager (real PostgreSQL, the simulator, a virtual
clock): queued whatever the tenant's state, sent once it is connected, in order, exactly once;
idempotency keys, pacing on virtual time, typing, expiry, cancel, failure, ``unknown``."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import psycopg
import pytest

from wamgr import (
    InvalidMessage,
    InvalidRecipient,
    MessageStateConflict,
    OutboundStatus,
    TenantState,
    UnknownMessage,
    UnknownTenant,
)
from wamgr.clock import VirtualClock
from wamgr.pacing import typing_seconds
from wamgr.transport.sim import SimWhatsApp
from wamgr.workers.outbound_sender import SCAN_INTERVAL_S

CONNECTED = TenantState.CONNECTED
QUEUED, SENT = OutboundStatus.QUEUED, OutboundStatus.SENT
TO = "15550001111"


def _unpaced(make_manager, **overrides):
    """A manager that sends as fast as it can."""
    return make_manager(send_rate=None, **overrides)


def _connected(mgr, tenant_id: str = "t1") -> str:
    mgr.connect(tenant_id)
    return mgr.wait_for(tenant_id, CONNECTED, timeout=5).jid


def _advance_until(clock: VirtualClock, done: Callable[[], bool], step: float = SCAN_INTERVAL_S):
    """Step the clock (one scan interval at a time) until ``done()``; fail after 20 s."""
    end = time.monotonic() + 20.0
    while time.monotonic() < end:
        if done():
            return
        clock.advance(step)
        threading.Event().wait(0.02)
    raise AssertionError(f"never true: {done}")


def test_a_message_to_a_connected_tenant_is_sent(make_manager, sim: SimWhatsApp, wait_until):
    mgr = _unpaced(make_manager)
    jid = _connected(mgr)

    queued = mgr.send("t1", TO, "hello")

    assert queued.status is QUEUED and queued.to == TO and queued.text == "hello"
    wait_until(lambda: mgr.outbound("t1", queued.message_id).status is SENT)
    sent = mgr.outbound("t1", queued.message_id)
    assert sim.sent_messages(jid) == [(TO, "hello", sent.wa_message_id)]
    assert sent.sent_at is not None and sent.attempts == 1 and sent.error is None


@pytest.mark.slow
def test_messages_wait_through_backoff_and_go_once_each_in_order(
    make_manager, sim: SimWhatsApp, clock: VirtualClock, wait_until
):
    mgr = _unpaced(make_manager)
    jid = _connected(mgr)
    sim.hold_dials()
    sim.drop(jid, "network")
    mgr.wait_for("t1", TenantState.BACKOFF, timeout=5)

    ids = [mgr.send("t1", TO, f"m{i:03d}").message_id for i in range(100)]
    clock.advance(3.0)  # the retry dials, and is held
    wait_until(lambda: sim.parked_dials() == 1)
    assert mgr.status("t1").state is TenantState.CONNECTING

    assert {m.status for m in mgr.outbound_messages("t1", limit=1000)} == {QUEUED}
    assert sim.sent_messages(jid) == []
    sim.release_dials()
    wait_until(lambda: len(sim.sent_messages(jid)) == 100, timeout=30)
    wait_until(lambda: mgr.outbound_messages("t1", "sent", limit=1000) != [] and not [
        m for m in mgr.outbound_messages("t1", limit=1000) if m.status is not SENT
    ])  # fmt: skip

    texts = [text for _, text, _ in sim.sent_messages(jid)]
    assert texts == [f"m{i:03d}" for i in range(100)]
    sent = [mgr.outbound("t1", i) for i in ids]
    assert all(m.status is SENT and m.attempts == 1 for m in sent)
    assert [m.wa_message_id for m in sent] == [wa for _, _, wa in sim.sent_messages(jid)]
    assert mgr.outbound_messages("t1", status="queued") == []


def test_one_idempotency_key_makes_one_message_under_16_threads(
    make_manager, database_url: str
) -> None:
    mgr = _unpaced(make_manager)
    mgr.tenants_store.add("t1")
    barrier = threading.Barrier(16)
    got: list[str] = []

    def send() -> None:
        barrier.wait(5)
        got.append(mgr.send("t1", TO, "only once", idempotency_key="order-42").message_id)

    threads = [threading.Thread(target=send) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert len(got) == 16 and len(set(got)) == 1
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM wamgr_outbound").fetchone() == (1,)
    other = mgr.send("t1", TO, "another", idempotency_key="order-43")
    assert other.message_id != got[0]


@pytest.mark.slow  # 96 steps of the clock; tests/test_pacing.py is the fast representative
def test_100_messages_at_20_a_minute_take_285_virtual_seconds_burst_first(
    make_manager, sim: SimWhatsApp, clock: VirtualClock, wait_until
):
    mgr = make_manager(send_rate=20, send_burst=5)
    jid = _connected(mgr)
    start = clock.time()

    for i in range(100):
        mgr.send("t1", TO, f"m{i}")

    def sent_count() -> int:
        return len(mgr.outbound_messages("t1", "sent", limit=1000))

    wait_until(lambda: sent_count() == 5)
    for n in range(6, 101):
        clock.advance(3.0)
        wait_until(lambda n=n: sent_count() == n)

    sent = mgr.outbound_messages("t1", limit=1000)
    offsets = [m.sent_at.timestamp() - start for m in sent]
    assert offsets[:5] == [0.0] * 5  # the burst, at once
    assert offsets[5:] == pytest.approx([3.0 * k for k in range(1, 96)])
    assert offsets[-1] == pytest.approx(285.0) and offsets[-1] <= 300.0
    assert [text for _, text, _ in sim.sent_messages(jid)] == [f"m{i}" for i in range(100)]


@pytest.mark.slow
def test_a_paced_message_stays_queued_until_its_token(
    make_manager, sim: SimWhatsApp, clock: VirtualClock, wait_until
):
    mgr = make_manager(send_rate=1, send_burst=1)
    jid = _connected(mgr)
    first = mgr.send("t1", TO, "one")
    second = mgr.send("t1", TO, "two")
    wait_until(lambda: mgr.outbound("t1", first.message_id).status is SENT)

    clock.advance(59.0)
    threading.Event().wait(0.2)
    assert mgr.outbound("t1", second.message_id).status is QUEUED
    clock.advance(1.0)
    wait_until(lambda: mgr.outbound("t1", second.message_id).status is SENT)
    assert len(sim.sent_messages(jid)) == 2


@pytest.mark.slow
def test_a_tenants_own_send_rate_paces_it_and_not_the_others(
    make_manager, sim: SimWhatsApp, clock: VirtualClock, wait_until
):
    mgr = _unpaced(make_manager)
    mgr.configure("slow", create=True, send_rate=1, send_burst=1)
    slow, fast = _connected(mgr, "slow"), _connected(mgr, "fast")
    queued = {t: [mgr.send(t, TO, f"{t} {n}") for n in range(3)] for t in ("slow", "fast")}

    wait_until(
        lambda: all(mgr.outbound("fast", m.message_id).status is SENT for m in queued["fast"])
    )
    wait_until(lambda: mgr.outbound("slow", queued["slow"][0].message_id).status is SENT)
    threading.Event().wait(0.2)
    assert [mgr.outbound("slow", m.message_id).status for m in queued["slow"][1:]] == [QUEUED] * 2
    clock.advance(60.0)
    wait_until(lambda: mgr.outbound("slow", queued["slow"][1].message_id).status is SENT)
    assert mgr.outbound("slow", queued["slow"][2].message_id).status is QUEUED
    assert (len(sim.sent_messages(slow)), len(sim.sent_messages(fast))) == (2, 3)


@pytest.mark.slow
def test_typing_shows_before_each_message_for_a_time_that_grows_with_it(
    make_manager, sim: SimWhatsApp, clock: VirtualClock, wait_until
):
    mgr = make_manager(send_rate=None, send_typing=True)
    jid = _connected(mgr)
    text = "a message of some forty characters......"

    message = mgr.send("t1", TO, text)
    wait_until(lambda: sim.activity(jid) == [("presence", TO, "typing")])
    clock.advance(typing_seconds(text) - 0.1)
    threading.Event().wait(0.2)
    assert mgr.outbound("t1", message.message_id).status is QUEUED
    clock.advance(0.1)
    wait_until(lambda: mgr.outbound("t1", message.message_id).status is SENT)

    wa_id = mgr.outbound("t1", message.message_id).wa_message_id
    assert sim.activity(jid) == [("presence", TO, "typing"), ("message", TO, wa_id)]
    assert typing_seconds(text) > typing_seconds("hi")


@pytest.mark.slow
def test_a_message_not_sent_in_time_expires(make_manager, sim, clock: VirtualClock, wait_until):
    mgr = _unpaced(make_manager)
    mgr.tenants_store.add("t1")  # wanted connected, run by no instance: messages wait

    short = mgr.send("t1", TO, "soon stale", expires_in=60)
    default = mgr.send("t1", TO, "for a day")
    _advance_until(clock, lambda: mgr.outbound("t1", short.message_id).status is not QUEUED)

    expired = mgr.outbound("t1", short.message_id)
    assert expired.status is OutboundStatus.EXPIRED
    assert expired.finished_at.timestamp() - short.created_at.timestamp() <= 60 + 2
    assert mgr.outbound("t1", default.message_id).status is QUEUED
    assert default.expires_at.timestamp() - default.created_at.timestamp() == 86_400


def test_a_queued_message_can_be_cancelled_and_is_then_never_sent(
    make_manager, sim: SimWhatsApp, wait_until
):
    mgr = _unpaced(make_manager)
    mgr.tenants_store.add("t1")
    doomed = mgr.send("t1", TO, "never")
    kept = mgr.send("t1", TO, "kept")

    cancelled = mgr.cancel_outbound("t1", doomed.message_id)
    jid = _connected(mgr)
    wait_until(lambda: mgr.outbound("t1", kept.message_id).status is SENT)

    assert cancelled.status is OutboundStatus.CANCELLED
    assert [text for _, text, _ in sim.sent_messages(jid)] == ["kept"]
    with pytest.raises(MessageStateConflict, match="is cancelled: only a queued message"):
        mgr.cancel_outbound("t1", doomed.message_id)
    with pytest.raises(MessageStateConflict, match="is sent"):
        mgr.cancel_outbound("t1", kept.message_id)
    with pytest.raises(MessageStateConflict, match="is sent"):
        mgr.resend("t1", kept.message_id)


def _insert_sending(database_url: str, tenant_id: str, text: str) -> str:
    """A row as a sender that died mid-send leaves it."""
    message_id = str(uuid.uuid4())
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO wamgr_outbound (message_id, tenant_id, payload, status, attempts,"
            " sender, created_at, expires_at) VALUES (%s, %s, %s, 'sending', 1, 'gw-dead',"
            " now(), now() + interval '1 day')",
            (message_id, tenant_id, psycopg.types.json.Jsonb({"to": TO, "text": text})),
        )
    return message_id


@pytest.mark.slow
def test_a_message_caught_sending_becomes_unknown_and_is_sent_only_when_resent(
    make_manager, sim: SimWhatsApp, database_url: str, wait_until
):
    mgr = _unpaced(make_manager)
    mgr.tenants_store.add("t1")
    stuck = _insert_sending(database_url, "t1", "maybe sent")
    after = mgr.send("t1", TO, "after it")

    jid = _connected(mgr)
    wait_until(lambda: mgr.outbound("t1", after.message_id).status is SENT)

    unknown = mgr.outbound("t1", stuck)
    assert unknown.status is OutboundStatus.UNKNOWN
    assert "may or may not have been sent" in unknown.error
    assert [text for _, text, _ in sim.sent_messages(jid)] == ["after it"]

    mgr.resend("t1", stuck)
    wait_until(lambda: mgr.outbound("t1", stuck).status is SENT)
    assert [text for _, text, _ in sim.sent_messages(jid)] == ["after it", "maybe sent"]
    assert mgr.outbound("t1", stuck).attempts == 2


def test_a_message_caught_sending_of_a_tenant_connected_here_is_found_by_the_next_scan(
    make_manager, clock: VirtualClock, database_url: str
):
    mgr = _unpaced(make_manager)
    _connected(mgr)
    with psycopg.connect(database_url, autocommit=True) as conn:  # run by nobody here
        conn.execute("INSERT INTO wamgr_tenants (tenant_id, desired) VALUES ('t9', 'stopped')")
    elsewhere = _insert_sending(database_url, "t9", "another sender's")
    stuck = _insert_sending(database_url, "t1", "maybe sent")  # no pass was told of it

    _advance_until(clock, lambda: mgr.outbound("t1", stuck).status is OutboundStatus.UNKNOWN)

    assert "may or may not have been sent" in mgr.outbound("t1", stuck).error
    assert mgr.outbound("t9", elsewhere).status is OutboundStatus.SENDING  # not ours to judge


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("logged_out", "is logged_out"), ("remove", "was removed")],
)
def test_messages_of_a_tenant_that_will_not_send_fail_with_the_reason(
    make_manager, sim: SimWhatsApp, clock: VirtualClock, fault: str, reason: str
):
    mgr = _unpaced(make_manager)
    jid = _connected(mgr)
    if fault == "remove":
        mgr.remove("t1")
    else:
        sim.drop(jid, fault)
        mgr.wait_for("t1", TenantState.LOGGED_OUT, timeout=5)

    message = mgr.send("t1", TO, "too late")
    # It may pass through `sending` on its way (the tenant refuses it there).
    _advance_until(
        clock,
        lambda: (
            mgr.outbound("t1", message.message_id).status not in (QUEUED, OutboundStatus.SENDING)
        ),
    )

    failed = mgr.outbound("t1", message.message_id)
    assert failed.status is OutboundStatus.FAILED
    assert f"tenant t1 {reason}" in failed.error
    assert sim.sent_messages(jid) == []


@pytest.mark.slow
def test_a_send_through_the_instance_that_does_not_hold_the_tenant_reaches_the_holder(
    make_manager, sim: SimWhatsApp, wait_until
):
    holder = _unpaced(make_manager)
    jid = _connected(holder)
    other = _unpaced(make_manager)
    sim_accounts = sim.accounts()

    message = other.send("t1", TO, "from the other instance")
    wait_until(lambda: other.outbound("t1", message.message_id).status is SENT)

    assert sim.sent_messages(jid) == [
        (TO, "from the other instance", other.outbound("t1", message.message_id).wa_message_id)
    ]
    assert sim.accounts() == sim_accounts  # sent from t1's own account, no new one
    assert CONNECTED not in {s.state for s in other.local_statuses()}  # never ran t1


def test_listing_by_status_and_the_errors_of_bad_calls(make_manager) -> None:
    mgr = _unpaced(make_manager)
    mgr.tenants_store.add("t1")
    first = mgr.send("t1", TO, "one")
    second = mgr.send("t1", TO, "two")
    mgr.cancel_outbound("t1", first.message_id)

    assert [m.message_id for m in mgr.outbound_messages("t1")] == [
        first.message_id,
        second.message_id,
    ]
    assert [m.message_id for m in mgr.outbound_messages("t1", "queued")] == [second.message_id]
    with pytest.raises(UnknownMessage):
        mgr.outbound("t1", "no-such-id")
    with pytest.raises(UnknownTenant):
        mgr.send("nobody", TO, "x")
    with pytest.raises(InvalidRecipient):
        mgr.send("t1", "x", "x")
    for bad in ({"text": ""}, {"text": "a\x00b"}, {"expires_in": 0}, {"idempotency_key": ""}):
        kwargs = {"text": "ok", **bad}
        text = kwargs.pop("text")
        with pytest.raises(InvalidMessage):
            mgr.send("t1", TO, text, **kwargs)
    with pytest.raises(InvalidMessage, match="status: 'lost' is not one of"):
        mgr.outbound_messages("t1", "lost")


def test_finished_messages_are_pruned_after_the_retention(make_manager, clock, database_url):
    from wamgr.store.db import Database
    from wamgr.store.outbound import OutboundStore

    mgr = _unpaced(make_manager)
    mgr.tenants_store.add("t1")
    done = mgr.send("t1", TO, "cancelled")
    mgr.cancel_outbound("t1", done.message_id)
    waiting = mgr.send("t1", TO, "still queued", expires_in=30 * 86_400)
    db = Database(database_url, min_size=1, max_size=1)
    db.open()
    try:
        store = OutboundStore(db)
        assert store.prune(clock.time() - 1) == 0  # not old enough
        assert store.prune(clock.time() + 1) == 1
    finally:
        db.close()
    with pytest.raises(UnknownMessage):
        mgr.outbound("t1", done.message_id)
    assert mgr.outbound("t1", waiting.message_id).status is QUEUED
