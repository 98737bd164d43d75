"""Media (multipart upload or URL), replies, reactions, read receipts and presence over
HTTP: 202 queued, sent by the holder; what WhatsApp would refuse is 422 before queueing; the
media upload has its own body bound; an inbound message's media downloads through an
instance that does not hold the tenant."""

from __future__ import annotations

import socket

import pytest
from media_server import FILES, MediaServer

from wamgr import OutboundStatus, TenantState
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


def _connected(mgr) -> str:
    mgr.connect("t1")
    return mgr.wait_for("t1", TenantState.CONNECTED, timeout=5).jid


def _sent(mgr, wait_until, body: dict) -> str:
    """The WhatsApp id of a queued message, once sent."""
    wait_until(lambda: mgr.outbound("t1", body["message_id"]).status is OutboundStatus.SENT)
    return mgr.outbound("t1", body["message_id"]).wa_message_id


@pytest.mark.slow  # ~2 s; uploads stay covered fast by the body-bound test below
def test_each_media_kind_uploaded_or_by_url_reaches_the_sim(
    make_manager, serve_api, sim: SimWhatsApp, wait_until, media_server: MediaServer
):
    mgr = make_manager(send_rate=None)
    api = serve_api(mgr)
    jid = _connected(mgr)

    answers = {}
    for kind, (data, mime) in FILES.items():
        form = {"to": TO, "kind": str(kind)}
        if kind is MediaKind.IMAGE:
            form["caption"] = "look"
        upload = api.post(
            "/api/tenants/t1/messages/media", data=form, files={"file": ("f.bin", data, mime)}
        )
        by_url = api.post(
            "/api/tenants/t1/messages/media", data=form | {"url": f"{media_server.url}/{kind}"}
        )
        answers[kind] = (upload, by_url)

    sent = {}
    for kind, pair in answers.items():
        for answer in pair:
            assert answer.status_code == 202, answer.text
            assert answer.json()["status"] == "queued" and answer.json()["kind"] == str(kind)
            sent[_sent(mgr, wait_until, answer.json())] = kind
    records = {r.message_id: r.message for r in sim.outgoing(jid)}
    for wa_id, kind in sent.items():
        got = records[wa_id]
        assert isinstance(got, MediaOut)
        assert (got.media, got.data, got.mime, got.to) == (kind, *FILES[kind], TO)
        assert got.caption == ("look" if kind is MediaKind.IMAGE else None)
    document = answers[MediaKind.DOCUMENT][0].json()
    assert records[mgr.outbound("t1", document["message_id"]).wa_message_id].filename == "f.bin"


@pytest.mark.slow
def test_refused_media_is_422_before_anything_is_queued(mgr, serve_api, api_error):
    api = serve_api(mgr)
    mgr.tenants_store.add("t1")
    limit = MEDIA_LIMITS[MediaKind.STICKER].max_bytes
    url = "/api/tenants/t1/messages/media"
    sticker = {"to": TO, "kind": "sticker"}

    large = api_error(
        api.post(url, data=sticker, files={"file": ("s.webp", bytes(limit + 1), "image/webp")}),
        422,
        "MediaTooLarge",
    )
    gif = api.post(
        url, data={"to": TO, "kind": "image"}, files={"file": ("a.gif", b"GIF89a", "image/gif")}
    )
    bad_url = api.post(url, data=sticker | {"url": "file:///etc/passwd"})
    neither = api.post(url, data=sticker)

    assert f"{limit + 1} bytes" in large["message"] and f"limit of {limit}" in large["message"]
    api_error(gif, 422, "MediaRefused")
    assert api_error(bad_url, 422, "MediaRefused")["message"].startswith("url:")
    api_error(neither, 422, "MediaRefused")
    assert api.get("/api/tenants/t1/messages").json() == []


@pytest.mark.slow
def test_a_reply_a_reaction_a_read_and_a_presence_are_queued_and_sent(
    make_manager, serve_api, sim: SimWhatsApp, wait_until
):
    mgr = make_manager(send_rate=None)
    api = serve_api(mgr)
    jid = _connected(mgr)
    peer_id = sim.deliver_message(jid, "text", text="hi", sender=TO_JID)
    base = "/api/tenants/t1/messages"

    answers = [
        api.post(base, json={"to": TO, "text": "hello back", "quoted_id": peer_id}),
        api.post(f"{base}/reaction", json={"to": TO, "message_id": peer_id, "emoji": "👍"}),
        api.post(f"{base}/read", json={"to": TO, "message_ids": [peer_id]}),
        api.post(f"{base}/presence", json={"presence": "recording", "to": TO}),
        api.post(f"{base}/presence", json={"presence": "available"}),
    ]

    for answer in answers:
        assert answer.status_code == 202, answer.text
        wait_until(lambda a=answer: mgr.outbound("t1", a.json()["message_id"]).status == "sent")
    assert [r.message for r in sim.outgoing(jid)] == [
        TextOut(TO, "hello back", peer_id),
        ReactionOut(TO, peer_id, "👍"),
        ReadOut(TO, (peer_id,)),
        PresenceOut(Presence.RECORDING, TO),
        PresenceOut(Presence.AVAILABLE, None),
    ]


@pytest.mark.slow
def test_the_same_idempotency_key_queues_one_reaction(mgr, serve_api):
    api = serve_api(mgr)
    mgr.tenants_store.add("t1")
    body = {"to": TO, "message_id": "3EB0ABC", "emoji": "🎉"}
    headers = {"idempotency-key": "react-1"}

    first = api.post("/api/tenants/t1/messages/reaction", json=body, headers=headers)
    again = api.post("/api/tenants/t1/messages/reaction", json=body, headers=headers)

    assert first.status_code == again.status_code == 202
    assert first.json()["message_id"] == again.json()["message_id"]
    assert len(api.get("/api/tenants/t1/messages").json()) == 1


def _answer_to_length(api, path: str, length: int) -> tuple[int, bytes]:
    """Send only the head of a POST whose body would be ``length`` bytes; the status and body
    of the answer (the guard answers from the head alone when it refuses)."""
    url = api.base_url
    head = (
        f"POST {path} HTTP/1.1\r\nhost: {url.host}\r\nx-api-key: {api.headers['x-api-key']}\r\n"
        f"content-type: multipart/form-data; boundary=b\r\ncontent-length: {length}\r\n\r\n"
    )
    with socket.create_connection((url.host, url.port), timeout=15) as sock:
        sock.sendall(head.encode())
        answer = b""
        while (chunk := sock.recv(65536)) != b"":
            answer += chunk
    status_line, _, body = answer.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), body


def test_a_media_upload_may_pass_max_body_bytes_up_to_max_media_bytes(make_manager, serve_api):
    mgr = make_manager(max_body_bytes=2048, max_media_bytes=64 * 1024)
    api = serve_api(mgr)
    mgr.tenants_store.add("t1")
    image = b"\x89PNG" + bytes(8 * 1024)

    fits = api.post(
        "/api/tenants/t1/messages/media",
        data={"to": TO, "kind": "image"},
        files={"file": ("a.png", image, "image/png")},
    )
    text_status, _ = _answer_to_length(api, "/api/tenants/t1/messages", 4096)
    over_status, over = _answer_to_length(api, "/api/tenants/t1/messages/media", 64 * 1024 + 1)

    assert fits.status_code == 202, fits.text
    assert text_status == over_status == 413
    assert b"BodyTooLarge" in over and b"WAMGR_MAX_MEDIA_BYTES" in over


@pytest.mark.slow
def test_media_downloads_through_the_instance_that_does_not_hold_the_tenant(
    make_manager, serve_api, sim: SimWhatsApp, api_error
):
    owner, other = make_manager(), make_manager()
    jid = _connected(owner)
    pdf = b"%PDF-1.7\n" + bytes(range(256)) * 4
    with_media = sim.deliver_message(jid, "document", media=pdf, mime="application/pdf")
    api = serve_api(other)

    got = api.get(f"/api/tenants/t1/messages/{with_media}/media")
    missing = api.get("/api/tenants/t1/messages/NOPE/media")

    assert got.status_code == 200, got.text
    assert got.content == pdf and got.headers["content-type"] == "application/pdf"
    assert other.local_statuses() == []  # the holder answered; nothing opened here
    api_error(missing, 404, "MediaUnavailable")
