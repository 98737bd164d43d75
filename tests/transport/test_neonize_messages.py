"""The neonize link's message surface, with Go's calls played in Python (``FakeGoClient``):
the proxy given to ``connect()`` (the dial), each outgoing kind mapped to neonize's builders
and calls, each inbound kind and receipt read from neonize's events, media downloaded."""

from __future__ import annotations

import threading

import pytest

from wamgr import InboundMessage, MessageAck, TenantState
from wamgr.transport.base import (
    AckStatus,
    Closed,
    CloseReason,
    InboundKind,
    MessageReceived,
    Receipt,
)
from wamgr.transport.neonize import events as nev
from wamgr.transport.outgoing import TextOut, check_outgoing

from .conftest import JID, feed, insert_device, jid_proto, neonize_events, neonize_proto, store_jid
from .test_outgoing import EVERY_KIND

PEER = "15559998888@s.whatsapp.net"
GROUP = "120363000000000001@g.us"
FACTS = nev.LinkFacts(7, JID, 1_700_000_000.0)


def _message_event(body, msg_id="M1", chat=PEER, group=False, from_me=False):
    proto = neonize_proto()
    source = proto.MessageSource(
        Chat=jid_proto(chat),
        Sender=jid_proto("15559998888:3@s.whatsapp.net"),
        IsGroup=group,
        IsFromMe=from_me,
    )
    return neonize_events().MessageEv(
        Info=proto.MessageInfo(ID=msg_id, MessageSource=source), Message=body
    )


def _e2e(**fields):
    from wamgr.transport.neonize.lib import E2EMessage

    return E2EMessage(**fields)


def _proto_module():
    import importlib

    return importlib.import_module("neonize.proto.waE2E.WAWebProtobufsE2E_pb2")


def _inbound_cases():
    m = _proto_module()
    quoted = m.ContextInfo(stanzaID="Q1")
    sha = bytes(range(32))
    return [
        (InboundKind.TEXT, _e2e(conversation="hi"), "hi", None, None),
        (
            InboundKind.TEXT,
            _e2e(extendedTextMessage=m.ExtendedTextMessage(text="re", contextInfo=quoted)),
            "re",
            "Q1",
            None,
        ),
        (
            InboundKind.IMAGE,
            _e2e(
                imageMessage=m.ImageMessage(
                    caption="look",
                    mimetype="image/jpeg",
                    fileLength=1234,
                    fileSHA256=sha,
                    contextInfo=quoted,
                )
            ),
            "look",
            "Q1",
            ("image/jpeg", 1234, None, False),
        ),
        (
            InboundKind.VIDEO,
            _e2e(videoMessage=m.VideoMessage(caption="v", mimetype="video/mp4", fileLength=9)),
            "v",
            None,
            ("video/mp4", 9, None, False),
        ),
        (
            InboundKind.AUDIO,
            _e2e(audioMessage=m.AudioMessage(mimetype="audio/ogg", fileLength=5, PTT=True)),
            "",
            None,
            ("audio/ogg", 5, None, True),
        ),
        (
            InboundKind.DOCUMENT,
            _e2e(
                documentMessage=m.DocumentMessage(
                    caption="offer", mimetype="application/pdf", fileLength=7, fileName="o.pdf"
                )
            ),
            "offer",
            None,
            ("application/pdf", 7, "o.pdf", False),
        ),
        (
            InboundKind.STICKER,
            _e2e(stickerMessage=m.StickerMessage(mimetype="image/webp", fileLength=3)),
            "",
            None,
            ("image/webp", 3, None, False),
        ),
        (
            InboundKind.REACTION,
            _e2e(reactionMessage=m.ReactionMessage(text="👍", key={"ID": "Q2"})),
            "👍",
            "Q2",
            None,
        ),
        (
            InboundKind.LOCATION,
            _e2e(locationMessage=m.LocationMessage(degreesLatitude=1.5, degreesLongitude=2.5)),
            "1.5,2.5",
            None,
            None,
        ),
        (
            InboundKind.CONTACT,
            _e2e(contactMessage=m.ContactMessage(displayName="Ann")),
            "Ann",
            None,
            None,
        ),
    ]


@pytest.mark.parametrize(
    ("kind", "body", "text", "quoted", "media"),
    _inbound_cases(),
    ids=[f"{case[0]}-{n}" for n, case in enumerate(_inbound_cases())],
)
def test_every_inbound_kind_is_read_with_its_fields(kind, body, text, quoted, media) -> None:
    event = nev.translate(_message_event(body, chat=GROUP, group=True), FACTS)

    assert isinstance(event, MessageReceived)
    assert (event.kind, event.text, event.quoted_id) == (kind, text, quoted)
    assert (event.sender, event.chat, event.is_group) == (PEER, GROUP, True)
    if media is None:
        assert event.media is None
    else:
        assert (event.media.mime, event.media.size, event.media.filename, event.media.voice) == (
            media
        )
    if kind is InboundKind.IMAGE:
        assert event.media.sha256 == bytes(range(32)).hex()


def test_our_own_messages_status_updates_and_unknown_kinds_are_not_reported() -> None:
    assert nev.translate(_message_event(_e2e(conversation="x"), from_me=True), FACTS) is None
    broadcast = "status@broadcast"
    assert nev.translate(_message_event(_e2e(conversation="x"), chat=broadcast), FACTS) is None
    assert nev.translate(_message_event(_e2e()), FACTS) is None


@pytest.mark.parametrize(
    ("type_name", "status"),
    [("DELIVERED", AckStatus.DELIVERED), ("READ", AckStatus.READ), ("PLAYED", AckStatus.PLAYED)],
)
def test_a_receipt_of_our_messages_is_reported(type_name: str, status: AckStatus) -> None:
    proto = neonize_proto()
    source = proto.MessageSource(Chat=jid_proto(PEER), Sender=jid_proto(PEER))
    event = neonize_events().ReceiptEv(
        MessageSource=source, MessageIDs=["3EB01", "3EB02"], Type=getattr(proto.Receipt, type_name)
    )

    assert nev.translate(event, FACTS) == Receipt(7, ("3EB01", "3EB02"), PEER, PEER, status)


def test_receipts_of_no_interest_are_not_reported() -> None:
    proto = neonize_proto()
    source = proto.MessageSource(Chat=jid_proto(PEER), Sender=jid_proto(PEER))
    ev = neonize_events()
    for type_name in ("SENDER", "RETRY", "READ_SELF", "SERVER_ERROR"):
        event = ev.ReceiptEv(
            MessageSource=source, MessageIDs=["x"], Type=getattr(proto.Receipt, type_name)
        )
        assert nev.translate(event, FACTS) is None, type_name
    mine = proto.MessageSource(Chat=jid_proto(PEER), Sender=jid_proto(JID), IsFromMe=True)
    event = ev.ReceiptEv(MessageSource=mine, MessageIDs=["x"], Type=proto.Receipt.READ)
    assert nev.translate(event, FACTS) is None  # our other device read it


# --- the link, with Go played in Python -------------------------------------------------------


def test_the_proxy_is_given_to_connect_the_dial_itself(make_manager, fake_neonize, database_url):
    insert_device(database_url, JID)
    store_jid(database_url, "t1", JID)
    # No claim loop: it would restore the wanted tenant (a dial) before the proxy is set.
    mgr = make_manager(transport=fake_neonize.transport, claim_tenants=False)
    mgr.configure("t1", proxy="socks5://alice:pw@10.0.0.5:1080")

    mgr.connect("t1")
    client = fake_neonize.client()
    feed(client, neonize_events().ConnectedEv(status=True))
    mgr.wait_for("t1", TenantState.CONNECTED, timeout=5)

    assert client.calls[0] == "connect"  # the dial: whatsmeow applies the proxy first
    assert client.proxy_settings.proxy_address == "socks5://alice:pw@10.0.0.5:1080"


def test_a_dial_through_a_bad_proxy_fails_saying_so_without_the_password(fake_neonize):
    fake_neonize.script.dial_error = "proxyconnect tcp: dial tcp 10.0.0.5:1080: connection refused"
    events: list = []
    done = threading.Event()

    def on_event(event) -> None:
        events.append(event)
        if isinstance(event, Closed):
            done.set()

    link = fake_neonize.transport.create_link(
        "t1", None, 1, on_event, proxy="socks5://alice:pw@10.0.0.5:1080"
    )
    link.open()
    assert done.wait(5)

    closed = events[-1]
    assert closed.reason is CloseReason.DIAL_FAILED
    assert "connection refused (through proxy socks5://alice:***@10.0.0.5:1080)" in closed.detail
    assert ":pw@" not in closed.detail


@pytest.mark.slow
def test_each_outgoing_kind_maps_to_neonizes_calls(connected, fake_neonize) -> None:
    _mgr, client = connected
    link = _link_of(fake_neonize, client)
    messages = [check_outgoing(m) for m in EVERY_KIND]

    ids = [link.send(m) for m in messages]

    built = [
        c
        for c in client.calls
        if c.startswith(("build", "mark_read", "send_presence", "send_chat_presence"))
    ]
    assert built == [
        "build imageMessage",
        "build videoMessage",
        "build audioMessage",
        "build documentMessage",
        "build stickerMessage",
        "build_reaction 15551234567 3EB0B 👍",
        "mark_read 3EB0C 3EB0D 15551234567 READ",
        "send_chat_presence 15551234567 CHAT_PRESENCE_COMPOSING CHAT_PRESENCE_MEDIA_TEXT",
        "send_presence AVAILABLE",
    ]
    sent = [message for _to, message in client.messages]
    text, image, video, audio, document, sticker, reaction = sent
    assert text.extendedTextMessage.text == "hello"
    assert text.extendedTextMessage.contextInfo.stanzaID == "3EB0A"  # the reply's quote
    assert image.imageMessage.caption == "look" and video.videoMessage.caption == "watch"
    assert audio.audioMessage.PTT is True
    assert document.documentMessage.fileName == "offer.pdf"
    assert document.documentMessage.mimetype == "application/pdf"
    assert sticker.HasField("stickerMessage")
    assert reaction.reactionMessage.key.ID == "3EB0B"
    assert ids[-3:] == [None, None, None] and all(ids[:-3])


def test_a_reply_to_a_message_the_link_has_quotes_it_whole(connected, fake_neonize) -> None:
    mgr, client = connected
    link = _link_of(fake_neonize, client)
    arrived = threading.Event()
    mgr.subscribe(lambda e: arrived.set() if isinstance(e, InboundMessage) else None)
    feed(client, _message_event(_e2e(conversation="question?"), msg_id="Q9"))
    assert arrived.wait(5)

    link.send(check_outgoing(TextOut(PEER, "answer", quoted_id="Q9")))

    context = client.messages[-1][1].extendedTextMessage.contextInfo
    assert context.stanzaID == "Q9" and context.participant == PEER
    assert context.quotedMessage.conversation == "question?"


def test_inbound_media_reaches_subscribers_and_downloads_through_the_link(
    connected, fake_neonize
) -> None:
    mgr, client = connected
    got: list = []
    arrived = threading.Event()

    def subscriber(event) -> None:
        if isinstance(event, InboundMessage | MessageAck):
            got.append(event)
            if isinstance(event, MessageAck):
                arrived.set()

    mgr.subscribe(subscriber)
    m = _proto_module()
    body = _e2e(imageMessage=m.ImageMessage(caption="c", mimetype="image/png", fileLength=4))
    feed(client, _message_event(body, msg_id="IMG1"))
    proto = neonize_proto()
    feed(
        client,
        neonize_events().ReceiptEv(
            MessageSource=proto.MessageSource(Chat=jid_proto(PEER), Sender=jid_proto(PEER)),
            MessageIDs=["3EB0X"],
            Type=proto.Receipt.READ,
        ),
    )
    assert arrived.wait(5)
    client.script.media = b"\x89PNG"

    image, ack = got
    assert (image.kind, image.text, image.media.mime, image.media.size) == (
        "image",
        "c",
        "image/png",
        4,
    )
    assert (ack.message_ids, ack.status) == (("3EB0X",), AckStatus.READ)
    assert _link_of(fake_neonize, client).download_media("IMG1") == (b"\x89PNG", "image/png")
    with pytest.raises(LookupError):
        _link_of(fake_neonize, client).download_media("never-seen")


def _link_of(fake_neonize, client):
    """The NeonizeLink that owns ``client``."""
    return next(link for link in fake_neonize.transport._links.values() if link.client is client)
