"""The simulator's message surface: every outgoing kind recorded as sent, every inbound kind
delivered with its fields and media kept for download, receipts, and the proxy each dial
used (a refusing proxy is a dial failure that says so). Also through a ``wamgr sim`` server,
so links in other processes carry the same."""

from __future__ import annotations

import hashlib
import threading

import pytest

from wamgr.transport.base import (
    AckStatus,
    Closed,
    CloseReason,
    Connected,
    InboundKind,
    MessageReceived,
    Receipt,
)
from wamgr.transport.outgoing import check_outgoing
from wamgr.transport.sim import SimNotConnected, SimWhatsApp
from wamgr.transport.sim_client import RemoteSimTransport
from wamgr.transport.sim_server import SimServer

from .conftest import PEER, Events, paired_link
from .test_outgoing import EVERY_KIND

GROUP = "120363000000000001@g.us"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def test_every_outgoing_kind_is_recorded_with_its_id(sim: SimWhatsApp) -> None:
    link, _events, jid = paired_link(sim)
    messages = [check_outgoing(m) for m in EVERY_KIND]

    ids = [link.send(m) for m in messages]

    sent = sim.outgoing(jid)
    assert [r.message for r in sent] == messages
    assert [r.message_id for r in sent] == ids
    silent = {"read", "presence"}
    assert all((i is None) == (m.kind in silent) for m, i in zip(messages, ids, strict=True))
    assert len({i for i in ids if i}) == len(messages) - 3  # read + 2 presences: no id
    assert sim.sent_messages(jid) == [(messages[0].to, "hello", ids[0])]  # text, as before


def test_a_link_that_is_not_connected_sends_nothing(sim: SimWhatsApp) -> None:
    link, _events, jid = paired_link(sim)
    link.close(do_logout=False)
    with pytest.raises(SimNotConnected):
        link.send(check_outgoing(EVERY_KIND[1]))
    assert sim.outgoing(jid) == []


@pytest.mark.parametrize("kind", [k for k in InboundKind if k is not InboundKind.OTHER])
def test_every_inbound_kind_arrives_with_its_fields(sim: SimWhatsApp, kind: InboundKind) -> None:
    link, events, jid = paired_link(sim)
    media = PNG if kind in {"image", "video", "audio", "document", "sticker"} else None

    message_id = sim.deliver_message(
        jid,
        kind,
        sender=PEER,
        text="caption or text",
        chat=GROUP,
        quoted_id="3EB0QUOTED",
        media=media,
        mime="image/png",
        filename="f.png",
    )

    got = events.items[-1]
    assert isinstance(got, MessageReceived)
    assert (got.message_id, got.kind, got.sender, got.text) == (
        message_id,
        kind,
        PEER,
        "caption or text",
    )
    assert (got.chat, got.is_group, got.quoted_id) == (GROUP, True, "3EB0QUOTED")
    if media is None:
        assert got.media is None
        with pytest.raises(LookupError):
            link.download_media(message_id)
    else:
        assert got.media is not None
        assert (got.media.mime, got.media.size) == ("image/png", len(PNG))
        assert got.media.sha256 == hashlib.sha256(PNG).hexdigest()
        assert link.download_media(message_id) == (PNG, "image/png")


def test_a_direct_message_has_the_sender_as_its_chat(sim: SimWhatsApp) -> None:
    _link, events, jid = paired_link(sim)
    sim.deliver_message(jid, sender=PEER, text="hi")
    got = events.items[-1]
    assert (got.chat, got.is_group, got.kind) == (PEER, False, InboundKind.TEXT)


def test_receipts_report_delivered_read_and_played(sim: SimWhatsApp) -> None:
    link, events, jid = paired_link(sim)
    sent = link.send_text(PEER, "hi")

    for status in AckStatus:
        sim.receipt(jid, [sent], status, sender=PEER)

    receipts = [e for e in events.items if isinstance(e, Receipt)]
    assert [(r.message_ids, r.status, r.sender, r.chat) for r in receipts] == [
        ((sent,), status, PEER, PEER) for status in AckStatus
    ]


def test_each_dial_records_its_proxy_and_a_refusing_proxy_fails_the_dial(
    sim: SimWhatsApp,
) -> None:
    proxy = "socks5://alice:pw@10.0.0.5:1080"
    first = Events()
    sim.create_link("t1", None, 1, first, proxy=proxy).open()
    sim.refuse_proxy(proxy)
    second = Events()
    sim.create_link("t1", None, 2, second, proxy=proxy).open()
    third = Events()
    sim.create_link("t1", None, 3, third).open()

    assert sim.dial_proxies("t1") == [proxy, proxy, None]
    assert Connected in first.kinds() and Connected in third.kinds()
    (closed,) = second.closed()
    assert closed.reason is CloseReason.DIAL_FAILED
    assert "proxy socks5://10.0.0.5:1080 refused" in closed.detail
    assert "pw" not in closed.detail


@pytest.mark.slow
def test_a_sim_server_carries_proxies_sends_downloads_and_receipts(sim: SimWhatsApp) -> None:
    server = SimServer(sim).start()
    transport = RemoteSimTransport(server.url)
    try:
        events = _RemoteEvents()
        link = transport.create_link("t1", None, 1, events, proxy="http://10.0.0.6:3128")
        link.open()
        connected = events.wait(Connected)
        message = check_outgoing(EVERY_KIND[1])  # an image
        sent = link.send(message)
        inbound = sim.deliver_message(connected.jid, "document", media=PNG, mime="application/pdf")
        sim.receipt(connected.jid, [sent], "read")
        events.wait(Receipt)

        assert sim.dial_proxies("t1") == ["http://10.0.0.6:3128"]
        assert [(r.message_id, r.message) for r in sim.outgoing(connected.jid)] == [(sent, message)]
        assert link.download_media(inbound) == (PNG, "application/pdf")
        received = next(e for e in events.items if isinstance(e, MessageReceived))
        assert received.media is not None and received.media.size == len(PNG)
        receipt = next(e for e in events.items if isinstance(e, Receipt))
        assert (receipt.message_ids, receipt.status) == ((sent,), AckStatus.READ)
        link.close(do_logout=False)
        events.wait(Closed)
    finally:
        transport.close()
        server.stop()


class _RemoteEvents(Events):
    """Events that arrive on another thread: ``wait`` for one of a kind."""

    def __init__(self) -> None:
        super().__init__()
        self._changed = threading.Condition()

    def __call__(self, event) -> None:
        with self._changed:
            super().__call__(event)
            self._changed.notify_all()

    def wait(self, kind, timeout: float = 5.0):
        with self._changed:
            assert self._changed.wait_for(
                lambda: any(isinstance(e, kind) for e in self.items), timeout
            ), self.items
            return next(e for e in self.items if isinstance(e, kind))
