"""Inbound messages and receipts as neonize delivers them, in wamgr's words.

:func:`inbound_message` reads a neonize ``MessageEv`` of any kind (text, image, video, audio
or voice note, document, sticker, reaction, location, contact) into a
:class:`~wamgr.transport.base.MessageReceived`: its text or caption, sender, chat (group or
direct), quoted id and media metadata (mime type, size, SHA-256). :func:`receipt` reads a
``ReceiptEv`` of messages this account sent (delivered, read, played) into a
:class:`~wamgr.transport.base.Receipt`. :class:`RecentMessages` keeps the last inbound
messages of a link so their media can be downloaded and replies can quote them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from wamgr.transport.base import (
    AckStatus,
    InboundKind,
    MediaInfo,
    MessageReceived,
    Receipt,
)
from wamgr.transport.neonize.auth import format_jid

#: Inbound messages a link remembers (for media download and quoting), newest kept.
RECENT_MAX = 500

#: Media fields of ``Message``, in the order they are looked for, and their kind.
_MEDIA = (
    ("imageMessage", InboundKind.IMAGE),
    ("videoMessage", InboundKind.VIDEO),
    ("audioMessage", InboundKind.AUDIO),
    ("documentMessage", InboundKind.DOCUMENT),
    ("stickerMessage", InboundKind.STICKER),
)
#: Receipt types (neonize's ``Receipt.Type`` numbers) reported, and as what.
_ACKS = {1: AckStatus.DELIVERED, 4: AckStatus.READ, 6: AckStatus.PLAYED}


def sender_of(source: Any) -> str:
    """The sender's phone JID (no device), or its LID when WhatsApp gave no phone JID."""
    sender = source.Sender
    alt = source.SenderAlt
    if sender.Server == "lid" and alt.User:
        sender = alt
    return format_jid(sender.User, 0, 0, sender.Server)


def _chat_of(source: Any) -> str:
    chat = source.Chat
    return format_jid(chat.User, 0, 0, chat.Server)


def is_from_someone(event: Any) -> bool:
    """A message someone else sent to this account or to one of its groups (not ours, not
    a status update), of a kind wamgr reports."""
    source = event.Info.MessageSource
    if source.IsFromMe or source.Chat.Server == "broadcast":
        return False
    return kind_of(event.Message) is not InboundKind.OTHER


def kind_of(message: Any) -> InboundKind:
    """What a ``Message`` proto holds."""
    if message.conversation or message.HasField("extendedTextMessage"):
        return InboundKind.TEXT
    for name, kind in _MEDIA:
        if message.HasField(name):
            return kind
    if message.HasField("reactionMessage"):
        return InboundKind.REACTION
    if message.HasField("locationMessage"):
        return InboundKind.LOCATION
    if message.HasField("contactMessage"):
        return InboundKind.CONTACT
    return InboundKind.OTHER


def inbound_message(event: Any, generation: int) -> MessageReceived:
    """The MessageReceived of a neonize ``MessageEv``."""
    message = event.Message
    source = event.Info.MessageSource
    kind = kind_of(message)
    text, quoted, media = "", None, None
    if kind is InboundKind.TEXT:
        ext = message.extendedTextMessage
        text = message.conversation or ext.text
        quoted = ext.contextInfo.stanzaID or None
    elif kind is InboundKind.REACTION:
        text, quoted = message.reactionMessage.text, message.reactionMessage.key.ID or None
    elif kind is InboundKind.LOCATION:
        loc = message.locationMessage
        text = loc.name or f"{loc.degreesLatitude},{loc.degreesLongitude}"
    elif kind is InboundKind.CONTACT:
        text = message.contactMessage.displayName
    else:
        field = dict((k, n) for n, k in _MEDIA)[kind]
        part = getattr(message, field)
        text = getattr(part, "caption", "")
        quoted = part.contextInfo.stanzaID or None
        media = MediaInfo(
            mime=part.mimetype,
            size=int(part.fileLength),
            sha256=bytes(part.fileSHA256).hex(),
            filename=getattr(part, "fileName", "") or None,
            voice=bool(getattr(part, "PTT", False)),
        )
    return MessageReceived(
        generation,
        event.Info.ID,
        sender_of(source),
        text,
        kind=kind,
        chat=_chat_of(source),
        is_group=bool(source.IsGroup),
        quoted_id=quoted,
        media=media,
    )


def is_ack(event: Any) -> bool:
    """A receipt of messages this account sent: delivered, read or played by the peer."""
    if not event.MessageIDs or event.MessageSource.IsFromMe:
        return False
    return int(event.Type) in _ACKS


def receipt(event: Any, generation: int) -> Receipt:
    """The Receipt of a neonize ``ReceiptEv``."""
    source = event.MessageSource
    return Receipt(
        generation,
        tuple(event.MessageIDs),
        _chat_of(source),
        sender_of(source),
        _ACKS[int(event.Type)],
    )


@dataclass(frozen=True, slots=True)
class Remembered:
    """An inbound message a link keeps: neonize's event and its sender."""

    message: Any  # neonize's Message event (Info + Message)
    sender: str
    mime: str | None  # its media's mime type; None if it has no media


class RecentMessages:
    """The last :data:`RECENT_MAX` inbound messages of one link, by id (thread-safe)."""

    def __init__(self, limit: int = RECENT_MAX):
        self._limit = limit
        self._lock = threading.Lock()
        self._items: OrderedDict[str, Remembered] = OrderedDict()

    def add(self, event: Any) -> None:
        """Remember neonize ``MessageEv`` ``event`` (the oldest is forgotten beyond the limit)."""
        media = inbound_message(event, 0).media
        item = Remembered(event, sender_of(event.Info.MessageSource), media and media.mime)
        with self._lock:
            self._items[event.Info.ID] = item
            self._items.move_to_end(event.Info.ID)
            while len(self._items) > self._limit:
                self._items.popitem(last=False)

    def get(self, message_id: str) -> Remembered | None:
        """The remembered message ``message_id``, or None."""
        with self._lock:
            return self._items.get(message_id)
