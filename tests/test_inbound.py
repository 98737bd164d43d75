"""Inbound dedup through the manager: a message id reaches subscribers once, across restarts."""

from __future__ import annotations

import threading

import pytest

from wamgr import DatabaseUnavailable, InboundMessage, MessageAck, TenantState
from wamgr.actors import messages as m
from wamgr.events import ManagerEvent
from wamgr.transport.base import InboundKind

CONNECTED = TenantState.CONNECTED
PEER = "15550002222@s.whatsapp.net"
#: Seconds to wait for a message to reach a subscriber.
DELIVERY_TIMEOUT_S = 5.0


class Inbox:
    """A subscriber that keeps the inbound messages it gets and can wait for one by id."""

    def __init__(self) -> None:
        self.messages: list[InboundMessage] = []
        self._arrived = threading.Condition()

    def __call__(self, event: ManagerEvent) -> None:
        if isinstance(event, InboundMessage):
            with self._arrived:
                self.messages.append(event)
                self._arrived.notify_all()

    def ids(self) -> list[str]:
        with self._arrived:
            return [message.message_id for message in self.messages]

    def wait_for(self, message_id: str) -> None:
        with self._arrived:
            got = self._arrived.wait_for(
                lambda: any(m.message_id == message_id for m in self.messages),
                DELIVERY_TIMEOUT_S,
            )
        assert got, f"{message_id} not delivered within {DELIVERY_TIMEOUT_S:g} s: {self.ids()}"


@pytest.mark.slow
def test_a_redelivered_message_reaches_subscribers_once_even_after_a_restart(make_manager, sim):
    first = make_manager(instance_id="first")
    inbox = Inbox()
    first.subscribe(inbox)
    first.connect("t1")
    jid = first.wait_for("t1", CONNECTED, timeout=5).jid

    sim.inbound(jid, PEER, "hello", message_id="X")
    sim.inbound(jid, PEER, "hello", message_id="X")  # WhatsApp redelivers it
    sim.inbound(jid, PEER, "next", message_id="M1")
    inbox.wait_for("M1")  # one tenant, one dispatcher: everything before M1 has arrived

    assert inbox.ids() == ["X", "M1"]
    assert inbox.messages[0].text == "hello" and inbox.messages[0].tenant_id == "t1"
    first.stop()

    second = make_manager(instance_id="second")  # a restarted process, same database
    after_restart = Inbox()
    second.subscribe(after_restart)
    assert second.wait_for("t1", CONNECTED, timeout=5).jid == jid
    sim.inbound(jid, PEER, "hello", message_id="X")  # redelivered after the restart
    sim.inbound(jid, PEER, "later", message_id="M2")
    after_restart.wait_for("M2")

    assert after_restart.ids() == ["M2"]
    assert sim.max_concurrent_sockets() == 1


def test_the_same_id_for_two_tenants_is_two_messages(mgr, sim):
    inbox = Inbox()
    mgr.subscribe(inbox)
    jids = {}
    for tenant in ("a", "b"):
        mgr.connect(tenant)
        jids[tenant] = mgr.wait_for(tenant, CONNECTED, timeout=5).jid

    sim.inbound(jids["a"], PEER, "to a", message_id="SAME")
    sim.inbound(jids["b"], PEER, "to b", message_id="SAME")
    # Each tenant's messages arrive in order, but the two tenants' are not ordered between
    # them: a marker after each tenant's message shows both were handled.
    for tenant in ("a", "b"):
        sim.inbound(jids[tenant], PEER, "marker", message_id=f"END-{tenant}")
    inbox.wait_for("END-a")
    inbox.wait_for("END-b")

    assert sorted((m.tenant_id, m.text) for m in inbox.messages if m.message_id == "SAME") == [
        ("a", "to a"),
        ("b", "to b"),
    ]


def test_seen_is_shared_with_the_inbound_path(mgr, sim):
    assert mgr.seen("t1", "APP-1") is True
    assert mgr.seen("t1", "APP-1") is False

    inbox = Inbox()
    mgr.subscribe(inbox)
    mgr.connect("t1")
    jid = mgr.wait_for("t1", CONNECTED, timeout=5).jid
    sim.inbound(jid, PEER, "already seen", message_id="APP-1")
    sim.inbound(jid, PEER, "new", message_id="M1")
    inbox.wait_for("M1")

    assert inbox.ids() == ["M1"]
    assert mgr.seen("t1", "M1") is False  # the inbound path recorded it


def test_a_message_whose_id_cannot_be_recorded_is_still_delivered(mgr, sim, monkeypatch):
    inbox = Inbox()
    mgr.subscribe(inbox)
    mgr.connect("t1")
    jid = mgr.wait_for("t1", CONNECTED, timeout=5).jid

    def unavailable(*_args: object) -> bool:
        raise DatabaseUnavailable("simulated outage")

    # the id and its webhook events are recorded in one statement (for the global endpoints
    # and the tenant's own), whether or not any endpoint is configured
    monkeypatch.setattr(mgr.runtime.outbox, "record_inbound", unavailable)
    sim.inbound(jid, PEER, "during the outage", message_id="OUT-1")

    inbox.wait_for("OUT-1")  # a possible duplicate beats a lost customer message


def test_a_stalled_inbound_write_does_not_hold_the_tenant_actor(mgr, sim, monkeypatch):
    """The dedup write runs on the pipeline's thread: while it hangs, the tenant's actor
    still answers (and so would handle a lease fence queued behind the message)."""
    inbox = Inbox()
    mgr.subscribe(inbox)
    mgr.connect("t1")
    jid = mgr.wait_for("t1", CONNECTED, timeout=5).jid
    stalled, release = threading.Event(), threading.Event()
    record = mgr.runtime.outbox.record_inbound

    def hanging(*args: object) -> bool:
        stalled.set()
        release.wait(10)
        return record(*args)

    monkeypatch.setattr(mgr.runtime.outbox, "record_inbound", hanging)
    sim.inbound(jid, PEER, "while the database hangs", message_id="SLOW-1")
    assert stalled.wait(5)

    ref = mgr.runtime.local.lookup("t1", mgr.runtime.local.deadline("lookup"))
    assert ref.ask(m.GetStatus(), timeout=1).state is CONNECTED
    mgr.reconnect("t1", timeout=1)  # a command to the actor goes through meanwhile
    assert inbox.ids() == []

    release.set()
    inbox.wait_for("SLOW-1")
    assert inbox.ids() == ["SLOW-1"]


def test_messages_reach_subscribers_in_the_order_they_came(mgr, sim):
    inbox = Inbox()
    mgr.subscribe(inbox)
    mgr.connect("t1")
    jid = mgr.wait_for("t1", CONNECTED, timeout=5).jid
    ids = [f"ORD-{n}" for n in range(20)]
    for message_id in ids:
        sim.inbound(jid, PEER, "in order", message_id=message_id)
    inbox.wait_for(ids[-1])
    assert inbox.ids() == ids


def test_every_inbound_kind_reaches_subscribers_with_its_fields(make_manager, sim) -> None:
    mgr = make_manager()
    inbox = Inbox()
    mgr.subscribe(inbox)
    mgr.connect("t1")
    jid = mgr.wait_for("t1", CONNECTED, timeout=5).jid
    kinds = [k for k in InboundKind if k is not InboundKind.OTHER]
    media = b"\x00\x01 bytes"
    for n, kind in enumerate(kinds):
        sim.deliver_message(
            jid,
            kind,
            sender=PEER,
            chat="120363000000000001@g.us" if kind == "image" else None,
            text=f"t{n}",
            quoted_id="Q" if kind == "reaction" else None,
            media=media if kind in {"image", "video", "audio", "document", "sticker"} else None,
            mime="audio/ogg",
            voice=kind == "audio",
            message_id=f"K{n}",
        )
    inbox.wait_for(f"K{len(kinds) - 1}")

    got = {message.message_id: message for message in inbox.messages}
    for n, kind in enumerate(kinds):
        message = got[f"K{n}"]
        assert (message.kind, message.text, message.sender) == (kind, f"t{n}", PEER)
    assert got["K0"].chat == PEER and not got["K0"].is_group
    image = got[f"K{kinds.index(InboundKind.IMAGE)}"]
    assert image.is_group and image.chat == "120363000000000001@g.us"
    assert (image.media.size, image.media.mime) == (len(media), "audio/ogg")
    assert got[f"K{kinds.index(InboundKind.AUDIO)}"].media.voice is True
    assert got[f"K{kinds.index(InboundKind.REACTION)}"].quoted_id == "Q"


def test_a_receipt_reaches_subscribers_as_a_message_ack(make_manager, sim) -> None:
    mgr = make_manager()
    acks: list[MessageAck] = []
    arrived = threading.Event()

    def subscriber(event: ManagerEvent) -> None:
        if isinstance(event, MessageAck):
            acks.append(event)
            arrived.set()

    mgr.subscribe(subscriber)
    mgr.connect("t1")
    jid = mgr.wait_for("t1", CONNECTED, timeout=5).jid
    sent = mgr.send_text("t1", PEER, "hello")
    sim.receipt(jid, [sent], "read", sender=PEER)

    assert arrived.wait(DELIVERY_TIMEOUT_S)
    assert [(a.tenant_id, a.message_ids, a.status, a.sender) for a in acks] == [
        ("t1", (sent,), "read", PEER)
    ]
