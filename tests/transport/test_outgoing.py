"""The outgoing message types: WhatsApp's limits checked before anything is queued (named
errors), and the queue's (kind, payload) form of every kind, there and back."""

from __future__ import annotations

import json

import pytest

from wamgr.errors import InvalidRecipient, MediaRefused, MediaTooLarge
from wamgr.transport.outgoing import (
    KINDS,
    MEDIA_LIMITS,
    MediaKind,
    MediaOut,
    Presence,
    PresenceOut,
    ReactionOut,
    ReadOut,
    TextOut,
    check_outgoing,
    from_payload,
    to_payload,
)

TO = "15551234567@s.whatsapp.net"


def _media(kind: MediaKind, size: int = 10, mime: str | None = None, **extra) -> MediaOut:
    mime = (
        mime
        or {
            MediaKind.IMAGE: "image/jpeg",
            MediaKind.VIDEO: "video/mp4",
            MediaKind.AUDIO: "audio/ogg",
            MediaKind.DOCUMENT: "application/pdf",
            MediaKind.STICKER: "image/webp",
        }[kind]
    )
    return MediaOut(TO, kind, b"x" * size, mime, **extra)


#: One message of every kind, as an application would send it.
EVERY_KIND = [
    TextOut("+15551234567", "hello", quoted_id="3EB0A"),
    _media(MediaKind.IMAGE, caption="look"),
    _media(MediaKind.VIDEO, caption="watch"),
    _media(MediaKind.AUDIO, voice=True),
    _media(MediaKind.DOCUMENT, caption="the offer", filename="offer.pdf"),
    _media(MediaKind.STICKER),
    ReactionOut(TO, "3EB0B", "👍"),
    ReadOut(TO, ("3EB0C", "3EB0D")),
    PresenceOut(Presence.TYPING, TO),
    PresenceOut(Presence.AVAILABLE),
]


@pytest.mark.parametrize(
    "message", EVERY_KIND, ids=[f"{m.kind}-{n}" for n, m in enumerate(EVERY_KIND)]
)
def test_every_kind_goes_through_the_queue_form_unchanged(message) -> None:
    checked = check_outgoing(message)

    kind, payload = to_payload(checked)

    assert kind in KINDS and kind == checked.kind
    assert from_payload(kind, json.loads(json.dumps(payload))) == checked


def test_a_phone_number_is_normalised_to_a_jid_like_every_recipient() -> None:
    assert check_outgoing(TextOut("+15551234567", "hi")).to == "15551234567"


@pytest.mark.parametrize("kind", list(MediaKind))
def test_media_over_its_kinds_limit_is_refused_with_the_limit(kind: MediaKind) -> None:
    limit = MEDIA_LIMITS[kind].max_bytes
    check_outgoing(_media(kind, size=limit))  # at the limit: fine

    with pytest.raises(MediaTooLarge) as caught:
        check_outgoing(_media(kind, size=limit + 1))

    assert (caught.value.kind, caught.value.limit) == (str(kind), limit)
    assert caught.value.field == "media" and caught.value.http_status == 422


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (_media(MediaKind.IMAGE, mime="image/gif"), "mime"),
        (_media(MediaKind.STICKER, mime="image/png"), "mime"),
        (_media(MediaKind.AUDIO, caption="no"), "caption"),
        (_media(MediaKind.STICKER, caption="no"), "caption"),
        (_media(MediaKind.IMAGE, caption="c" * 1025), "caption"),
        (_media(MediaKind.DOCUMENT, filename="../etc/passwd"), "filename"),
        (_media(MediaKind.IMAGE, size=0), "media"),
        (ReactionOut(TO, "", "👍"), "message_id"),
        (ReactionOut(TO, "3EB0", "x" * 17), "emoji"),
        (ReadOut(TO, ()), "message_ids"),
        (PresenceOut(Presence.RECORDING), "to"),
    ],
)
def test_what_whatsapp_would_refuse_is_refused_naming_the_field(message, field: str) -> None:
    with pytest.raises(MediaRefused) as caught:
        check_outgoing(message)
    assert caught.value.field == field


def test_a_bad_recipient_is_refused_as_for_text() -> None:
    with pytest.raises(InvalidRecipient):
        check_outgoing(MediaOut("not a number", MediaKind.IMAGE, b"x", "image/png"))


def test_only_a_document_keeps_its_file_name_and_only_audio_is_a_voice_note() -> None:
    image = check_outgoing(_media(MediaKind.IMAGE, filename="a.jpg", voice=True))
    assert image.filename is None and image.voice is False


def test_a_malformed_queue_row_is_refused_not_sent() -> None:
    with pytest.raises(MediaRefused, match="payload"):
        from_payload("image", {"to": TO, "data_b64": "!!!", "mime": "image/png"})
    with pytest.raises(MediaRefused, match="unknown kind"):
        from_payload("poll", {})
