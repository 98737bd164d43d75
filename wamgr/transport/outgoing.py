"""What a link can send: the outgoing message types, WhatsApp's media limits, and the JSON
form the outbound queue stores (``kind`` text + ``payload`` jsonb). Pure: no I/O.

Every type is a frozen dataclass a link's :meth:`~wamgr.transport.base.Link.send` takes:

==========  =====================================================================
kind        type and what it carries
==========  =====================================================================
text        :class:`TextOut` (to, text, quoted_id)
image       :class:`MediaOut` (to, data, mime, caption, quoted_id)
video       :class:`MediaOut` (same)
audio       :class:`MediaOut` (``voice=True``: a voice note; no caption)
document    :class:`MediaOut` (``filename``; caption allowed)
sticker     :class:`MediaOut` (webp bytes; no caption)
reaction    :class:`ReactionOut` (chat, message_id, emoji, sender of that message)
read        :class:`ReadOut` (chat, message_ids, sender): mark as read
presence    :class:`PresenceOut` (available, unavailable; typing, recording, paused in ``to``)
==========  =====================================================================

:func:`check_outgoing` refuses, before anything is queued, what WhatsApp would refuse (named
errors, 422 over HTTP); :func:`to_payload` / :func:`from_payload` turn a message into the
queue's row and back.
"""

from __future__ import annotations

import base64
import binascii
import enum
from dataclasses import dataclass, field
from typing import Any

from wamgr.errors import MediaRefused, MediaTooLarge
from wamgr.status import validate_recipient, validate_text

MB = 1024 * 1024


class MediaKind(enum.StrEnum):
    """The kinds of media message WhatsApp has."""

    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    DOCUMENT = "document"
    STICKER = "sticker"


@dataclass(frozen=True, slots=True)
class MediaLimit:
    """What WhatsApp takes for one media kind: the largest file and the mime types."""

    max_bytes: int
    mimes: frozenset[str]  # empty: any type
    caption: bool  # whether a caption may go with it


#: WhatsApp's limits per media kind (the Cloud API's published table, which the apps share).
MEDIA_LIMITS: dict[MediaKind, MediaLimit] = {
    MediaKind.IMAGE: MediaLimit(5 * MB, frozenset({"image/jpeg", "image/png"}), True),
    MediaKind.VIDEO: MediaLimit(16 * MB, frozenset({"video/mp4", "video/3gpp"}), True),
    MediaKind.AUDIO: MediaLimit(
        16 * MB,
        frozenset({"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"}),
        False,
    ),
    MediaKind.DOCUMENT: MediaLimit(100 * MB, frozenset(), True),
    MediaKind.STICKER: MediaLimit(500 * 1024, frozenset({"image/webp"}), False),
}
#: Longest caption, filename and emoji, in characters.
CAPTION_CHARS_MAX = 1024
FILENAME_CHARS_MAX = 240
EMOJI_CHARS_MAX = 16
#: Most message ids one read receipt marks.
READ_IDS_MAX = 100


class Presence(enum.StrEnum):
    """A presence to show: the account's (available, unavailable) or in one chat."""

    AVAILABLE = "available"
    UNAVAILABLE = "unavailable"
    TYPING = "typing"
    RECORDING = "recording"
    PAUSED = "paused"  # stops typing / recording

    @property
    def in_chat(self) -> bool:
        """Whether this presence is shown in one chat (needs ``to``)."""
        return self in (Presence.TYPING, Presence.RECORDING, Presence.PAUSED)


@dataclass(frozen=True, slots=True)
class TextOut:
    """A text message, optionally replying to ``quoted_id``."""

    to: str
    text: str = field(repr=False)
    quoted_id: str | None = None
    kind = "text"


@dataclass(frozen=True, slots=True)
class MediaOut:
    """A media message from bytes: image, video, audio (voice note), document or sticker."""

    to: str
    media: MediaKind
    data: bytes = field(repr=False)
    mime: str
    caption: str | None = field(default=None, repr=False)
    filename: str | None = None
    quoted_id: str | None = None
    voice: bool = False

    @property
    def kind(self) -> str:
        """The queue's kind: the media kind's name."""
        return str(self.media)


@dataclass(frozen=True, slots=True)
class ReactionOut:
    """A reaction (``emoji``; "" removes it) to message ``message_id`` in ``to``, which
    ``sender`` sent (None: the chat's peer, as in a direct chat)."""

    to: str
    message_id: str
    emoji: str
    sender: str | None = None
    kind = "reaction"


@dataclass(frozen=True, slots=True)
class ReadOut:
    """Mark ``message_ids`` in chat ``to`` (sent by ``sender``; None: the peer) as read."""

    to: str
    message_ids: tuple[str, ...]
    sender: str | None = None
    kind = "read"


@dataclass(frozen=True, slots=True)
class PresenceOut:
    """Show ``presence``: the account's, or in chat ``to`` for typing/recording/paused."""

    presence: Presence
    to: str | None = None
    kind = "presence"


Outgoing = TextOut | MediaOut | ReactionOut | ReadOut | PresenceOut
KINDS = ("text", *(str(k) for k in MediaKind), "reaction", "read", "presence")


# --- checks before anything is queued --------------------------------------------------------


def check_outgoing(message: Outgoing) -> Outgoing:
    """``message`` with its recipient normalised, if WhatsApp would take it; else MediaRefused
    (MediaTooLarge for a file over its kind's limit) or InvalidRecipient, naming the field."""
    match message:
        case TextOut():
            validate_text(message.text)
            return TextOut(validate_recipient(message.to), message.text, message.quoted_id)
        case MediaOut():
            return _check_media(message)
        case ReactionOut():
            if len(message.emoji) > EMOJI_CHARS_MAX:
                raise MediaRefused("emoji", f"at most {EMOJI_CHARS_MAX} characters")
            _need_id(message.message_id, "message_id")
            sender = validate_recipient(message.sender) if message.sender else None
            return ReactionOut(
                validate_recipient(message.to), message.message_id, message.emoji, sender
            )
        case ReadOut():
            if not 1 <= len(message.message_ids) <= READ_IDS_MAX:
                raise MediaRefused("message_ids", f"give 1 to {READ_IDS_MAX} message ids")
            for message_id in message.message_ids:
                _need_id(message_id, "message_ids")
            sender = validate_recipient(message.sender) if message.sender else None
            return ReadOut(validate_recipient(message.to), tuple(message.message_ids), sender)
        case PresenceOut():
            presence = Presence(message.presence)
            if presence.in_chat and not message.to:
                raise MediaRefused("to", f"presence {presence} is shown in a chat: give to")
            to = validate_recipient(message.to) if presence.in_chat and message.to else None
            return PresenceOut(presence, to)
    raise MediaRefused("kind", f"not an outgoing message: {type(message).__name__}")


def _check_media(message: MediaOut) -> MediaOut:
    kind = MediaKind(message.media)
    limit = MEDIA_LIMITS[kind]
    if not message.data:
        raise MediaRefused("media", f"the {kind} is empty")
    if len(message.data) > limit.max_bytes:
        raise MediaTooLarge(str(kind), len(message.data), limit.max_bytes)
    mime = message.mime.split(";")[0].strip().lower()
    if limit.mimes and mime not in limit.mimes:
        allowed = ", ".join(sorted(limit.mimes))
        raise MediaRefused("mime", f"WhatsApp takes a {kind} as {allowed}, not {mime!r}")
    if message.caption and not limit.caption:
        raise MediaRefused("caption", f"a {kind} has no caption")
    if message.caption and len(message.caption) > CAPTION_CHARS_MAX:
        raise MediaRefused("caption", f"at most {CAPTION_CHARS_MAX} characters")
    if message.caption:
        validate_text(message.caption)
    filename = message.filename
    if filename is not None and kind is not MediaKind.DOCUMENT:
        filename = None  # only a document shows its file name
    if filename is not None and (
        not filename.isprintable() or "/" in filename or len(filename) > FILENAME_CHARS_MAX
    ):
        raise MediaRefused(
            "filename", f"a plain file name of at most {FILENAME_CHARS_MAX} characters"
        )
    return MediaOut(
        validate_recipient(message.to),
        kind,
        message.data,
        mime,
        message.caption or None,
        filename,
        message.quoted_id,
        bool(message.voice and kind is MediaKind.AUDIO),
    )


def _need_id(message_id: object, where: str) -> None:
    if not isinstance(message_id, str) or not 0 < len(message_id) <= 128:
        raise MediaRefused(where, "give a message id of 1 to 128 characters")


# --- the queue's row --------------------------------------------------------------------------


def to_payload(message: Outgoing) -> tuple[str, dict[str, Any]]:
    """The queue's ``(kind, payload)`` of ``message`` (JSON-able; media bytes as base64)."""
    match message:
        case TextOut():
            return "text", {"to": message.to, "text": message.text, "quoted_id": message.quoted_id}
        case MediaOut():
            return message.kind, {
                "to": message.to,
                "data_b64": base64.b64encode(message.data).decode(),
                "mime": message.mime,
                "caption": message.caption,
                "filename": message.filename,
                "quoted_id": message.quoted_id,
                "voice": message.voice,
            }
        case ReactionOut():
            return "reaction", {
                "to": message.to,
                "message_id": message.message_id,
                "emoji": message.emoji,
                "sender": message.sender,
            }
        case ReadOut():
            return "read", {
                "to": message.to,
                "message_ids": list(message.message_ids),
                "sender": message.sender,
            }
        case PresenceOut():
            return "presence", {"presence": str(message.presence), "to": message.to}
    raise MediaRefused("kind", f"not an outgoing message: {type(message).__name__}")


def from_payload(kind: str, payload: dict[str, Any]) -> Outgoing:
    """The message of a queue row made by :func:`to_payload`; MediaRefused if malformed."""
    try:
        if kind == "text":
            return TextOut(payload["to"], payload["text"], payload.get("quoted_id"))
        if kind in MediaKind.__members__.values():
            return MediaOut(
                payload["to"],
                MediaKind(kind),
                base64.b64decode(payload["data_b64"], validate=True),
                payload["mime"],
                payload.get("caption"),
                payload.get("filename"),
                payload.get("quoted_id"),
                bool(payload.get("voice")),
            )
        if kind == "reaction":
            return ReactionOut(
                payload["to"], payload["message_id"], payload["emoji"], payload.get("sender")
            )
        if kind == "read":
            return ReadOut(payload["to"], tuple(payload["message_ids"]), payload.get("sender"))
        if kind == "presence":
            return PresenceOut(Presence(payload["presence"]), payload.get("to"))
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise MediaRefused("payload", f"a malformed {kind} row: {exc!r}") from None
    raise MediaRefused("kind", f"unknown kind {kind!r}; the kinds are {', '.join(KINDS)}")
