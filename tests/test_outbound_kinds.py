"""Every kind of message through the durable outbound queue (real PostgreSQL, the
simulator): media from bytes and from a URL the sender fetches, replies, reactions, read
receipts, presence; receipts move a sent message to delivered, then read."""

from __future__ import annotations

import pytest
from media_server import FILES, MediaServer

from wamgr import MediaRefused, MediaTooLarge, OutboundStatus, TenantState
from wamgr.outbound import MediaUrl
from wamgr.transport.base import AckStatus
from wamgr.transport.media_fetch import check_media_url
from wamgr.transport.outgoing import (
    MEDIA_LIMITS,
    MediaKind,
    MediaOut,
    Presence,
    PresenceOut,
    ReactionOut,
    ReadOut,
    TextOut,
)
from wamgr.transport.sim import SimWhatsApp

TO = "15550001111"
TO_JID = f"{TO}@s.whatsapp.net"
SENT = OutboundStatus.SENT


def _connected(make_manager, **overrides) -> tuple[object, str]:
    mgr = make_manager(send_rate=None, **overrides)
    mgr.connect("t1")
    return mgr, mgr.wait_for("t1", TenantState.CONNECTED, timeout=5).jid


def _settled(mgr, wait_until, message_id: str):
    wait_until(lambda: mgr.outbound("t1", message_id).status not in ("queued", "sending"))
    return mgr.outbound("t1", message_id)


def test_each_media_kind_from_bytes_reaches_the_sim(make_manager, sim: SimWhatsApp, wait_until):
    mgr, jid = _connected(make_manager)

    queued = {
        kind: mgr.send_message(
            "t1",
            MediaOut(
                TO,
                kind,
                data,
                mime,
                caption="look" if kind is MediaKind.IMAGE else None,
                filename="report.pdf",
                voice=kind is MediaKind.AUDIO,
            ),
        )
        for kind, (data, mime) in FILES.items()
    }

    done = {kind: _settled(mgr, wait_until, q.message_id) for kind, q in queued.items()}
    sent = {r.message_id: r.message for r in sim.outgoing(jid)}
    for kind, message in done.items():
        assert message.status is SENT and message.kind == str(kind), message
        got = sent[message.wa_message_id]
        assert isinstance(got, MediaOut) and got.media is kind
        assert (got.data, got.mime, got.to) == (*FILES[kind], TO)
    assert sent[done[MediaKind.IMAGE].wa_message_id].caption == "look"
    assert sent[done[MediaKind.DOCUMENT].wa_message_id].filename == "report.pdf"
    assert sent[done[MediaKind.AUDIO].wa_message_id].voice is True


@pytest.mark.slow
def test_each_media_kind_from_a_url_is_fetched_by_the_sender(
    make_manager, sim: SimWhatsApp, wait_until, media_server: MediaServer
):
    mgr, jid = _connected(make_manager)

    queued = {
        kind: mgr.send_message("t1", MediaUrl(TO, kind, f"{media_server.url}/{kind}"))
        for kind in FILES
    }

    done = {kind: _settled(mgr, wait_until, q.message_id) for kind, q in queued.items()}
    sent = {r.message_id: r.message for r in sim.outgoing(jid)}
    for kind, message in done.items():
        assert message.status is SENT, message
        got = sent[message.wa_message_id]
        assert isinstance(got, MediaOut) and (got.media, got.data, got.mime) == (kind, *FILES[kind])
    assert "url" in queued[MediaKind.IMAGE].payload  # the queue kept the URL, not the file


@pytest.mark.slow
def test_a_url_that_times_out_or_is_too_large_ends_failed_with_the_reason(
    make_manager, sim: SimWhatsApp, wait_until, media_server: MediaServer
):
    mgr, jid = _connected(make_manager, media_fetch_timeout_s=0.3)

    slow = mgr.send_message(
        "t1", MediaUrl(TO, MediaKind.IMAGE, f"{media_server.url}/slow?t=s3cr3t")
    )
    huge = mgr.send_message("t1", MediaUrl(TO, MediaKind.STICKER, f"{media_server.url}/huge"))
    after = mgr.send("t1", TO, "still goes")

    timed_out = _settled(mgr, wait_until, slow.message_id)
    too_large = _settled(mgr, wait_until, huge.message_id)
    assert timed_out.status is OutboundStatus.FAILED and "timed out after 0.3 s" in timed_out.error
    assert "s3cr3t" not in timed_out.error  # the URL is shown without its query
    assert too_large.status is OutboundStatus.FAILED and "over WhatsApp's limit" in too_large.error
    assert _settled(mgr, wait_until, after.message_id).status is SENT
    assert [text for _, text, _ in sim.sent_messages(jid)] == ["still goes"]
    assert not [r for r in sim.outgoing(jid) if isinstance(r.message, MediaOut)]


def test_a_reply_and_a_reaction_carry_the_quoted_id(make_manager, sim: SimWhatsApp, wait_until):
    mgr, jid = _connected(make_manager)
    peer_id = sim.deliver_message(jid, "text", text="hi", sender=TO_JID)

    reply = mgr.send_message("t1", TextOut(TO, "hello back", quoted_id=peer_id))
    reaction = mgr.send_message("t1", ReactionOut(TO, peer_id, "👍"))
    read = mgr.send_message("t1", ReadOut(TO, (peer_id,)))
    typing = mgr.send_message("t1", PresenceOut(Presence.TYPING, TO))

    for queued in (reply, reaction, read, typing):
        assert _settled(mgr, wait_until, queued.message_id).status is SENT
    sent = [r.message for r in sim.outgoing(jid)]
    assert sent == [
        TextOut(TO, "hello back", peer_id),
        ReactionOut(TO, peer_id, "👍"),
        ReadOut(TO, (peer_id,)),
        PresenceOut(Presence.TYPING, TO),
    ]
    assert mgr.outbound("t1", read.message_id).wa_message_id is None  # a receipt has no id


def test_refused_media_is_named_before_anything_is_queued(make_manager):
    mgr, _ = _connected(make_manager)
    limit = MEDIA_LIMITS[MediaKind.STICKER].max_bytes

    with pytest.raises(MediaTooLarge) as large:
        mgr.send_message("t1", MediaOut(TO, MediaKind.STICKER, bytes(limit + 1), "image/webp"))
    with pytest.raises(MediaRefused, match="mime"):
        mgr.send_message("t1", MediaOut(TO, MediaKind.IMAGE, b"x", "image/gif"))

    assert large.value.limit == limit
    assert mgr.outbound_messages("t1") == []


@pytest.mark.parametrize(
    "url", ["ftp://example.com/a.png", "/relative.png", "http://", "http://exa mple.com/a"]
)
def test_an_obviously_bad_url_is_refused_up_front(url):
    with pytest.raises(MediaRefused, match="url"):
        check_media_url(MediaUrl(TO, MediaKind.IMAGE, url))


@pytest.mark.slow
def test_receipts_move_a_sent_message_to_delivered_then_read(
    make_manager, sim: SimWhatsApp, wait_until
):
    mgr, jid = _connected(make_manager)
    message = _settled(mgr, wait_until, mgr.send("t1", TO, "did you get it").message_id)
    other = _settled(mgr, wait_until, mgr.send("t1", TO, "and this").message_id)

    sim.receipt(jid, [message.wa_message_id], AckStatus.DELIVERED, sender=TO_JID)
    wait_until(lambda: mgr.outbound("t1", message.message_id).status is OutboundStatus.DELIVERED)
    sim.receipt(jid, [message.wa_message_id, other.wa_message_id], AckStatus.READ, sender=TO_JID)
    wait_until(lambda: mgr.outbound("t1", message.message_id).status is OutboundStatus.READ)
    wait_until(lambda: mgr.outbound("t1", other.message_id).status is OutboundStatus.READ)
    third = _settled(mgr, wait_until, mgr.send("t1", TO, "third").message_id)
    sim.receipt(jid, [message.wa_message_id], AckStatus.DELIVERED, sender=TO_JID)  # late
    sim.receipt(jid, [third.wa_message_id], AckStatus.DELIVERED, sender=TO_JID)
    wait_until(lambda: mgr.outbound("t1", third.message_id).status is OutboundStatus.DELIVERED)

    done = mgr.outbound_messages("t1", "read")  # receipts are handled in order: the late
    assert [m.message_id for m in done] == [message.message_id, other.message_id]  # one too
    assert [m.message_id for m in mgr.outbound_messages("t1", "delivered")] == [third.message_id]
