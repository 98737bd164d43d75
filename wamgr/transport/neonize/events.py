"""What each neonize event means for a link: pure functions over neonize's protobuf events.

:func:`interpret` turns one event into an :class:`Outcome`: close the link (with wamgr's
:class:`~wamgr.transport.base.CloseReason`), report pairing or a connection, hand on a message,
or nothing. The link (``link.py``) acts on it; docs/neonize.md has the same table in prose.

neonize reports a logout with its *own* reason enum (``ConnectFailureReason`` 1–10), not
WhatsApp's numeric codes: 2 is 401, 4 is 403, 5 is 406 and so on. A code neonize's encoder
does not know leaves the field unset, and reading it then gives 1 (GENERIC): ``HasField``
tells the two apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from neonize.events import (
    ClientOutdatedEv,
    ConnectedEv,
    ConnectFailureEv,
    DisconnectedEv,
    KeepAliveRestoredEv,
    KeepAliveTimeoutEv,
    LoggedOutEv,
    MessageEv,
    PairStatusEv,
    StreamErrorEv,
    StreamReplacedEv,
    TemporaryBanEv,
    UndecryptableMessageEv,
)
from neonize.proto.Neonize_pb2 import JID, ConnectFailureReason
from neonize.utils.message import extract_text

from wamgr.transport.base import CloseReason
from wamgr.transport.neonize.auth import format_jid

#: Every event class a link subscribes to (Go forwards only what was registered before
#: ``connect()``).
SUBSCRIBED = (
    PairStatusEv,
    ConnectedEv,
    KeepAliveTimeoutEv,
    KeepAliveRestoredEv,
    LoggedOutEv,
    StreamReplacedEv,
    TemporaryBanEv,
    ConnectFailureEv,
    ClientOutdatedEv,
    StreamErrorEv,
    DisconnectedEv,
    MessageEv,
    UndecryptableMessageEv,
)

#: A keep-alive that failed this many pings in a row closes the link.
KEEPALIVE_MAX_ERRORS = 2
#: ... as does one whose last successful ping is older than this (whatsmeow waits 3 min).
KEEPALIVE_MAX_SILENCE_S = 60.0

# neonize's ConnectFailureReason -> (WhatsApp's code, wamgr's reason)
_FAILURE_REASONS: dict[int, tuple[int, CloseReason]] = {
    ConnectFailureReason.GENERIC: (400, CloseReason.CONNECT_FAILURE),
    ConnectFailureReason.LOGGED_OUT: (401, CloseReason.LOGGED_OUT),
    ConnectFailureReason.TEMP_BANNED: (402, CloseReason.TEMPORARY_BAN),
    ConnectFailureReason.MAIN_DEVICE_GONE: (403, CloseReason.MAIN_DEVICE_GONE),
    ConnectFailureReason.UNKNOWN_LOGOUT: (406, CloseReason.UNKNOWN_LOGOUT),
    ConnectFailureReason.CLIENT_OUTDATED: (405, CloseReason.CLIENT_OUTDATED),
    ConnectFailureReason.BAD_USER_AGENT: (409, CloseReason.BAD_USER_AGENT),
    ConnectFailureReason.INTERNAL_SERVER_ERROR: (500, CloseReason.SERVER_ERROR),
    ConnectFailureReason.EXPERIMENTAL: (501, CloseReason.CONNECT_FAILURE),
    ConnectFailureReason.SERVICE_UNAVAILABLE: (503, CloseReason.SERVER_ERROR),
}
_LOGOUT_REASONS = frozenset(
    {CloseReason.LOGGED_OUT, CloseReason.MAIN_DEVICE_GONE, CloseReason.UNKNOWN_LOGOUT}
)
# TemporaryBanEv.TempBanReason -> WhatsApp's ban code
_BAN_CODES = {1: 101, 2: 102, 3: 103, 4: 104, 5: 106}

# Status values of the QR channel's end (the login-status callback), other than "success".
_LOGIN_FAILURES: dict[str, tuple[CloseReason, str]] = {
    "timeout": (
        CloseReason.PAIRING_TIMEOUT,
        "no phone scanned the QR code in time (WhatsApp shows codes for 160 s)",
    ),
    "err-client-outdated": (CloseReason.CLIENT_OUTDATED, "client outdated while pairing"),
    "err-scanned-without-multidevice": (
        CloseReason.CONNECT_FAILURE,
        "the phone that scanned the code has multi-device turned off",
    ),
    "err-unexpected-state": (CloseReason.CONNECT_FAILURE, "pairing ended in an unexpected state"),
    "error": (CloseReason.NETWORK, "the connection broke while pairing"),
}


@dataclass(frozen=True, slots=True)
class Close:
    """Close the link for ``reason``."""

    reason: CloseReason
    detail: str
    ban_expires_in_s: float | None = None


@dataclass(frozen=True, slots=True)
class PairedAs:
    """The phone accepted the device; ``jid`` is its full device JID."""

    jid: str


@dataclass(frozen=True, slots=True)
class LoggedIn:
    """The socket is logged in (``ConnectedEv``)."""


@dataclass(frozen=True, slots=True)
class Inbound:
    """A text message from someone else."""

    message_id: str
    sender: str
    text: str


@dataclass(frozen=True, slots=True)
class Garbled:
    """A message that could not be decrypted."""

    message_id: str
    sender: str


Outcome = Close | PairedAs | LoggedIn | Inbound | Garbled | None


def jid_string(jid: JID) -> str:
    """The string of a JID proto, device number included (what whatsmeow stores)."""
    return format_jid(jid.User, jid.RawAgent, jid.Device, jid.Server)


def interpret(event: object, now_s: float) -> Outcome:
    """What ``event`` means for the link; ``now_s`` is the wall clock (unix seconds)."""
    match event:
        case ConnectedEv():
            return LoggedIn()
        case PairStatusEv():
            if event.Status == PairStatusEv.SUCCESS:
                return PairedAs(jid_string(event.ID))
            return Close(CloseReason.CONNECT_FAILURE, f"pairing failed: {event.Error or 'unknown'}")
        case LoggedOutEv():
            return _logged_out(event)
        case StreamReplacedEv():
            return Close(CloseReason.REPLACED, "stream replaced (440 conflict)")
        case TemporaryBanEv():
            return _temporary_ban(event)
        case ConnectFailureEv():
            return _connect_failure(event)
        case ClientOutdatedEv():
            return Close(CloseReason.CLIENT_OUTDATED, "405 client outdated")
        case StreamErrorEv():
            return Close(CloseReason.STREAM_ERROR, f"stream error {event.Code or '(no code)'}")
        case KeepAliveTimeoutEv():
            return _keepalive(event, now_s)
        case DisconnectedEv():
            return Close(CloseReason.NETWORK, "disconnected by the server or the network")
        case MessageEv():
            return _message(event)
        case UndecryptableMessageEv():
            if event.IsUnavailable:
                return None  # the sender sent no ciphertext at all: not a sign of bad keys
            source = event.Info.MessageSource
            return Garbled(event.Info.ID, _sender(source))
    return None


def login_failure(status: str) -> Close | None:
    """The close that ends pairing with login status ``status``; None for ``success``."""
    if status == "success":
        return None
    reason, detail = _LOGIN_FAILURES.get(
        status, (CloseReason.CONNECT_FAILURE, f"pairing ended: {status}")
    )
    return Close(reason, detail)


def dial_failure(message: str) -> Close:
    """The close for an error ``connect()`` raised (no event follows one)."""
    return Close(CloseReason.DIAL_FAILED, message or "connect() failed without a message")


def _logged_out(event: LoggedOutEv) -> Close:
    code, reason = 401, CloseReason.LOGGED_OUT
    if event.HasField("Reason"):
        mapped_code, mapped = _FAILURE_REASONS.get(event.Reason, (401, CloseReason.LOGGED_OUT))
        if mapped in _LOGOUT_REASONS:
            code, reason = mapped_code, mapped
    when = "on connect" if event.OnConnect else "while connected"
    return Close(reason, f"{code} logged out {when}")


def _temporary_ban(event: TemporaryBanEv) -> Close:
    if event.HasField("Code"):
        name = TemporaryBanEv.TempBanReason.Name(event.Code).lower().replace("_", " ")
        detail = f"402 temporary ban, code {_BAN_CODES.get(event.Code, '?')} ({name})"
    else:
        detail = "402 temporary ban (reason not given)"
    expires = float(event.Expire) if event.Expire > 0 else None
    return Close(CloseReason.TEMPORARY_BAN, detail, ban_expires_in_s=expires)


def _connect_failure(event: ConnectFailureEv) -> Close:
    message = f": {event.Message}" if event.Message else ""
    if event.HasField("Reason"):
        code, reason = _FAILURE_REASONS.get(event.Reason, (0, CloseReason.CONNECT_FAILURE))
        return Close(reason, f"connect failure {code}{message}")
    raw = ""
    for attr in event.Raw.Attrs:  # the <failure reason=...> node neonize could not encode
        if attr.name == "reason" and attr.WhichOneof("Value") in ("integer", "text"):
            raw = f" {getattr(attr, attr.WhichOneof('Value'))}"
    return Close(CloseReason.CONNECT_FAILURE, f"connect failure{raw}{message}")


def _keepalive(event: KeepAliveTimeoutEv, now_s: float) -> Close | None:
    silent_for = now_s - event.LastSuccess if event.LastSuccess > 0 else 0.0
    if event.ErrorCount >= KEEPALIVE_MAX_ERRORS or silent_for > KEEPALIVE_MAX_SILENCE_S:
        return Close(
            CloseReason.KEEPALIVE_TIMEOUT,
            f"{event.ErrorCount} keep-alive pings failed, last success {silent_for:.0f} s ago",
        )
    return None


def _message(event: MessageEv) -> Inbound | None:
    source = event.Info.MessageSource
    if source.IsFromMe or source.IsGroup or source.Chat.Server == "broadcast":
        return None  # our own messages, groups and status updates are not for subscribers
    text = extract_text(event.Message)
    if not text:
        return None  # not a text message
    return Inbound(event.Info.ID, _sender(source), text)


def _sender(source: object) -> str:
    """The sender's phone JID (no device), or its LID when WhatsApp gave no phone JID."""
    sender = source.Sender  # type: ignore[attr-defined]
    alt = source.SenderAlt  # type: ignore[attr-defined]
    if sender.Server == "lid" and alt.User:
        sender = alt
    return format_jid(sender.User, 0, 0, sender.Server)
