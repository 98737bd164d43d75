"""The link protocol: what every transport (simulated or neonize) promises the tenant actor.

A *transport* makes links; a *link* is at most one socket to WhatsApp for one tenant. Links
never call into actors directly: they report through the ``on_event`` callback they were
built with, and every event carries the link's ``generation`` so the tenant actor can drop
events from a link it has already replaced.

Every link reports exactly one :class:`Closed` event in its life, whether WhatsApp closed
it, the dial failed, or wamgr asked for it with :meth:`Link.close`. Nothing else follows a
``Closed`` event.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from wamgr.transport.outgoing import Outgoing


class CloseReason(enum.StrEnum):
    """Why a link closed, in wamgr's words (the policy maps each to what follows)."""

    REQUESTED = "requested"  # wamgr closed it (reconnect, remove, shutdown, fencing)
    NETWORK = "network"  # socket dropped, read/write error
    DIAL_FAILED = "dial_failed"  # could not reach WhatsApp at all
    KEEPALIVE_TIMEOUT = "keepalive_timeout"
    STREAM_ERROR = "stream_error"  # <stream:error> with a code wamgr does not treat specially
    SERVER_ERROR = "server_error"  # 500 internal server error / 503 service unavailable
    REPLACED = "replaced"  # 440 conflict: another socket for the account took over
    LOGGED_OUT = "logged_out"  # 401: the device was unlinked
    MAIN_DEVICE_GONE = "main_device_gone"  # 403: the phone's account is gone
    UNKNOWN_LOGOUT = "unknown_logout"  # 406
    TEMPORARY_BAN = "temporary_ban"  # 402, with an expiry
    CLIENT_OUTDATED = "client_outdated"  # 405
    BAD_USER_AGENT = "bad_user_agent"  # 409
    CONNECT_FAILURE = "connect_failure"  # any other connect failure code
    CORRUPTED_KEYS = "corrupted_keys"  # too many undecryptable messages
    DEVICE_IN_USE = "device_in_use"  # paired as a device another tenant is paired as
    PAIRING_TIMEOUT = "pairing_timeout"  # no phone scanned the QR (or typed the code) in time
    LEASE_LOST = "lease_lost"  # the process lost the tenant's lease and fenced itself


# --- events a link reports ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkEvent:
    """Base of every link event; ``generation`` names the link that sent it."""

    generation: int


@dataclass(frozen=True, slots=True)
class Qr(LinkEvent):
    """A QR code to scan with the phone (the link is waiting for pairing)."""

    code: str


@dataclass(frozen=True, slots=True)
class PairCode(LinkEvent):
    """A phone pair code to type on the phone (alternative to the QR)."""

    code: str


@dataclass(frozen=True, slots=True)
class Paired(LinkEvent):
    """The phone accepted this device; ``jid`` is the account it now belongs to."""

    jid: str


@dataclass(frozen=True, slots=True)
class Connected(LinkEvent):
    """The socket is logged in and ready to send and receive."""

    jid: str


@dataclass(frozen=True, slots=True)
class Closed(LinkEvent):
    """The socket is gone. ``ban_expires_in_s`` is set for a temporary ban."""

    reason: CloseReason
    detail: str = ""
    ban_expires_in_s: float | None = None


class InboundKind(enum.StrEnum):
    """What an inbound message is."""

    TEXT = "text"
    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"  # a voice note when ``MediaInfo.voice``
    DOCUMENT = "document"
    STICKER = "sticker"
    REACTION = "reaction"  # ``text`` is the emoji ("" removes it), ``quoted_id`` the target
    LOCATION = "location"
    CONTACT = "contact"
    OTHER = "other"  # a type wamgr does not map (polls, protocol messages...)


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """What an inbound message's media is, without its bytes (download them separately)."""

    mime: str
    size: int
    sha256: str  # hex of the file's SHA-256, as WhatsApp sent it
    filename: str | None = None  # documents
    voice: bool = False  # audio recorded as a voice note


@dataclass(frozen=True, slots=True)
class MessageReceived(LinkEvent):
    """An inbound message of any kind.

    ``text`` is the text, a media message's caption or a reaction's emoji; ``chat`` is where
    it was posted (the sender's JID in a direct chat, the group's in a group); ``quoted_id``
    the message it replies or reacts to.
    """

    message_id: str
    sender: str
    #: Left out of repr, so a log line that shows the event never shows the message.
    text: str = field(repr=False)
    kind: InboundKind = InboundKind.TEXT
    chat: str = ""
    is_group: bool = False
    quoted_id: str | None = None
    media: MediaInfo | None = None
    from_me: bool = False


class AckStatus(enum.StrEnum):
    """How far an outgoing message got (a receipt's kind)."""

    DELIVERED = "delivered"
    READ = "read"
    PLAYED = "played"  # a voice note or video was played


@dataclass(frozen=True, slots=True)
class Receipt(LinkEvent):
    """WhatsApp reports that messages this account sent were delivered to, read or played
    by ``sender`` in ``chat``."""

    message_ids: tuple[str, ...]
    chat: str
    sender: str
    status: AckStatus


@dataclass(frozen=True, slots=True)
class Undecryptable(LinkEvent):
    """An inbound message the link could not decrypt (a sign of corrupted keys)."""

    message_id: str
    sender: str


EventCallback = Callable[[LinkEvent], None]


# --- the protocols ------------------------------------------------------------------------


@runtime_checkable
class Link(Protocol):
    """One socket's life for one tenant. Built closed; ``open`` starts it."""

    generation: int

    def open(self) -> None:
        """Start dialling without blocking; results arrive as events."""

    def close(self, do_logout: bool) -> None:
        """Close the socket without blocking; a ``Closed(REQUESTED)`` event follows.

        With ``do_logout`` the device is unlinked first, but only if the socket is logged in.
        Closing a link that already reported ``Closed`` does nothing.
        """

    def send_text(self, to: str, text: str) -> str:
        """Send a text message and return its message id; raises if the link is not connected."""

    def send(self, message: Outgoing) -> str | None:
        """Send any outgoing message (:mod:`wamgr.transport.outgoing`): the id of the message
        sent, or None for a receipt or presence. Raises if the link is not connected."""

    def download_media(self, message_id: str) -> tuple[bytes, str]:
        """The bytes and mime type of the media of inbound message ``message_id`` this link
        received; raises LookupError if it has none (or has forgotten it)."""

    def request_pair_code(self, phone: str) -> str:
        """While pairing, ask for a code to type on the phone ``phone`` (digits with country
        code); returns the code. Raises if the link is not waiting for pairing.
        """


@runtime_checkable
class Transport(Protocol):
    """Makes links and forgets device credentials."""

    def create_link(
        self,
        tenant_id: str,
        jid: str | None,
        generation: int,
        on_event: EventCallback,
        proxy: str | None = None,
    ) -> Link:
        """Build a link for ``tenant_id``: resume device ``jid``, or pair a new one if None.
        With ``proxy`` (a socks5:// or http:// URL) the link dials WhatsApp through it; a
        proxy that cannot be used is a ``Closed(DIAL_FAILED)`` whose detail names it."""

    def clear_auth(self, tenant_id: str, jid: str | None) -> None:
        """Forget the device keys of ``jid`` (only that device; other tenants keep theirs)."""

    def close(self) -> None:
        """Release what the transport holds (threads, connections). Links are closed first."""
