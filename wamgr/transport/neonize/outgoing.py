"""How a neonize link sends each outgoing message: one neonize call (or builder + send) per
kind of :mod:`wamgr.transport.outgoing`.

==========  ===========================================================================
kind        neonize
==========  ===========================================================================
text        ``send_message(to, Message(conversation | extendedTextMessage + contextInfo))``
image       ``build_image_message(data, caption)`` then ``send_message``
video       ``build_video_message(data, caption)`` then ``send_message``
audio       ``build_audio_message(data, ptt=voice)`` then ``send_message``
document    ``build_document_message(data, caption, filename=, mimetype=)`` then ``send_message``
sticker     ``build_sticker_message(data, passthrough=True)`` (webp as is) then ``send_message``
reaction    ``build_reaction(chat, sender, message_id, emoji)`` then ``send_message``
read        ``mark_read(*ids, chat=, sender=, receipt=ReceiptType.READ)``
presence    ``send_presence(Presence.AVAILABLE|UNAVAILABLE)`` or ``send_chat_presence(chat,
            COMPOSING|PAUSED, MEDIA_TEXT|MEDIA_AUDIO)`` (typing, recording, paused)
==========  ===========================================================================

A reply (``quoted_id``) sets the built message's ``contextInfo``: the quoted id, its sender
and, when the link still has it (:class:`~wamgr.transport.neonize.messages.RecentMessages`),
the quoted message itself, so the phone shows the quote. Runs on the caller's thread with the
link's gate held shared (``link.py``).
"""

from __future__ import annotations

from typing import Any

from wamgr.transport.neonize.jids import recipient_jid
from wamgr.transport.neonize.lib import (
    ChatPresence,
    ChatPresenceMedia,
    ContextInfo,
    E2EMessage,
    ExtendedTextMessage,
    Presence,
    ReceiptType,
)
from wamgr.transport.neonize.messages import RecentMessages
from wamgr.transport.outgoing import (
    MediaKind,
    MediaOut,
    Outgoing,
    PresenceOut,
    ReactionOut,
    ReadOut,
    TextOut,
)
from wamgr.transport.outgoing import Presence as WantedPresence

#: The field of ``Message`` each media kind's builder fills.
MEDIA_FIELDS = {
    MediaKind.IMAGE: "imageMessage",
    MediaKind.VIDEO: "videoMessage",
    MediaKind.AUDIO: "audioMessage",
    MediaKind.DOCUMENT: "documentMessage",
    MediaKind.STICKER: "stickerMessage",
}
_CHAT_PRESENCE = {
    WantedPresence.TYPING: (
        ChatPresence.CHAT_PRESENCE_COMPOSING,
        ChatPresenceMedia.CHAT_PRESENCE_MEDIA_TEXT,
    ),
    WantedPresence.RECORDING: (
        ChatPresence.CHAT_PRESENCE_COMPOSING,
        ChatPresenceMedia.CHAT_PRESENCE_MEDIA_AUDIO,
    ),
    WantedPresence.PAUSED: (
        ChatPresence.CHAT_PRESENCE_PAUSED,
        ChatPresenceMedia.CHAT_PRESENCE_MEDIA_TEXT,
    ),
}


def send_outgoing(client: Any, message: Outgoing, recent: RecentMessages) -> str | None:
    """Send ``message`` with neonize ``client``; the sent message's id (None: read, presence)."""
    match message:
        case TextOut():
            to = recipient_jid(message.to)
            if message.quoted_id is None:
                built = E2EMessage(conversation=message.text)
            else:
                context = _context(message.quoted_id, message.to, recent)
                built = E2EMessage(
                    extendedTextMessage=ExtendedTextMessage(text=message.text, contextInfo=context)
                )
            return str(client.send_message(to, built).ID)
        case MediaOut():
            built = _build_media(client, message)
            if message.quoted_id is not None:
                media = getattr(built, MEDIA_FIELDS[message.media])
                media.contextInfo.CopyFrom(_context(message.quoted_id, message.to, recent))
            return str(client.send_message(recipient_jid(message.to), built).ID)
        case ReactionOut():
            chat = recipient_jid(message.to)
            sender = recipient_jid(message.sender or message.to)
            built = client.build_reaction(chat, sender, message.message_id, message.emoji)
            return str(client.send_message(chat, built).ID)
        case ReadOut():
            client.mark_read(
                *message.message_ids,
                chat=recipient_jid(message.to),
                sender=recipient_jid(message.sender or message.to),
                receipt=ReceiptType.READ,
            )
            return None
        case PresenceOut():
            if message.presence is WantedPresence.AVAILABLE:
                client.send_presence(Presence.AVAILABLE)
            elif message.presence is WantedPresence.UNAVAILABLE:
                client.send_presence(Presence.UNAVAILABLE)
            else:
                state, media = _CHAT_PRESENCE[message.presence]
                client.send_chat_presence(recipient_jid(message.to or ""), state, media)
            return None
    raise TypeError(f"not an outgoing message: {type(message).__name__}")


def _build_media(client: Any, message: MediaOut) -> Any:
    data = message.data
    match message.media:
        case MediaKind.IMAGE:
            return client.build_image_message(data, caption=message.caption)
        case MediaKind.VIDEO:
            return client.build_video_message(data, caption=message.caption)
        case MediaKind.AUDIO:
            return client.build_audio_message(data, ptt=message.voice)
        case MediaKind.DOCUMENT:
            return client.build_document_message(
                data, caption=message.caption, filename=message.filename, mimetype=message.mime
            )
        case MediaKind.STICKER:
            return client.build_sticker_message(data, passthrough=True)
    raise TypeError(f"unknown media kind {message.media!r}")


def _context(quoted_id: str, chat: str, recent: RecentMessages) -> ContextInfo:
    """The ``contextInfo`` of a reply to ``quoted_id`` in ``chat``."""
    quoted = recent.get(quoted_id)
    if quoted is None:
        sender = recipient_jid(chat)
        return ContextInfo(stanzaID=quoted_id, participant=f"{sender.User}@{sender.Server}")
    context = ContextInfo(stanzaID=quoted_id, participant=quoted.sender)
    context.quotedMessage.CopyFrom(quoted.message.Message)
    return context
