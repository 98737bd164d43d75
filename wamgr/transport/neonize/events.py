"""The neonize event table: everything that can happen to a neonize link, and what it reports.

:data:`TABLE` (at the end of this module) is the one place that says what a neonize link does
with each signal it gets: every event neonize forwards to it, and the link's own signals
(wamgr asked it to close, the device has no keys, ``connect()`` raised or returned, a QR was
shown, the QR loop ended). A row reads::

    Row(signal, when, reports, reason, detail)

``signal`` is the type of what arrived; ``when`` a condition on it (None: always);
``reports`` the :class:`~wamgr.transport.base.LinkEvent` the link reports (None: nothing);
for ``Closed``, ``reason`` is the :class:`~wamgr.transport.base.CloseReason` and ``detail``
the text that goes with it. The rows of one signal are tried top to bottom and the first whose
condition holds decides. :func:`translate` looks a signal up; the link (``link.py``) only
applies the answer: a ``Closed`` ends the link (teardown first, then the report), any other
event is reported as it is.

Events neonize can forward that no row names are in :data:`NOT_SUBSCRIBED`: the link never
registers for them, so Go drops them.

After the table, outside the transport: the tenant actor applies the events it gets
(``wamgr/actors/tenant.py``), and the policy maps each close reason to the tenant's next state,
its reconnect delay, and what becomes of its credentials and lease (``wamgr/policy.py``).

neonize reports logouts and connect failures with its *own* reason enum
(``ConnectFailureReason`` 1–10), not WhatsApp's numeric codes: 2 is 401, 4 is 403, 5 is 406
and so on; the rows give the WhatsApp code in their detail. A code neonize's encoder does not
know leaves the field unset, and reading it then gives 1 (GENERIC): ``HasField`` tells the two
apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wamgr.transport.base import (
    Closed,
    Connected,
    LinkEvent,
    MessageReceived,
    Paired,
    Qr,
    Receipt,
    Undecryptable,
)
from wamgr.transport.base import CloseReason as R
from wamgr.transport.neonize.jids import jid_string
from wamgr.transport.neonize.lib import ConnectFailureReason as F
from wamgr.transport.neonize.lib import neonize_events as ev
from wamgr.transport.neonize.messages import (
    inbound_message,
    is_ack,
    is_from_someone,
    receipt,
    sender_of,
)

#: A keep-alive that failed this many pings in a row closes the link.
KEEPALIVE_MAX_ERRORS = 2
#: ... as does one whose last successful ping is older than this (whatsmeow waits 3 min).
KEEPALIVE_MAX_SILENCE_S = 60.0


# --- the link's own signals (what is not a neonize event) -------------------------------------


@dataclass(frozen=True, slots=True)
class CloseAsked:
    """wamgr called ``Link.close``; ``do_logout``: unlink the device first (if logged in)."""

    do_logout: bool


@dataclass(frozen=True, slots=True)
class DeviceMissing:
    """The stored device JID has no keys in the auth store (checked before any Go call)."""

    jid: str


@dataclass(frozen=True, slots=True)
class ConnectRaised:
    """Building the client or ``connect()`` raised; no neonize event follows."""

    message: str


@dataclass(frozen=True, slots=True)
class ConnectReturned:
    """``connect()`` returned (Go's event loop ended), or Go was never started."""


@dataclass(frozen=True, slots=True)
class QrShown:
    """neonize's QR callback ran: ``code`` is the QR to scan."""

    code: str


@dataclass(frozen=True, slots=True)
class LoginEnded:
    """neonize's login-status callback: whatsmeow's QR channel ended with ``status``
    (``success``, ``timeout``, ``error``, ``err-…``; see whatsmeow's ``qrchan.go``)."""

    status: str


# --- rows -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkFacts:
    """What the link knows when a signal arrives (the events it reports carry some of it)."""

    generation: int
    #: The device JID as far as the link knows it ("" while it has none).
    jid: str
    #: The wall clock, unix seconds (keep-alive events carry unix timestamps).
    now_s: float


Condition = Callable[[Any, LinkFacts], bool]
Detail = str | Callable[[Any, LinkFacts], str]


@dataclass(frozen=True, slots=True)
class Row:
    """One row of :data:`TABLE`: for ``signal`` (when ``when`` holds) the link reports
    ``reports``; a ``Closed`` carries ``reason`` and ``detail`` (and ``ban_expiry``, the
    seconds until a temporary ban ends, where the event says)."""

    signal: type
    when: Condition | None
    reports: type[LinkEvent] | None
    reason: R | None = None
    detail: Detail = ""
    ban_expiry: Callable[[Any], float | None] | None = None

    def __post_init__(self) -> None:
        if (self.reports is Closed) != (self.reason is not None):
            raise ValueError(f"a row reports a reason exactly when it closes: {self!r}")

    def report(self, signal: Any, facts: LinkFacts) -> LinkEvent | None:
        """The event this row makes of ``signal``."""
        if self.reports is None:
            return None
        if self.reports is Closed:
            assert self.reason is not None
            detail = self.detail if isinstance(self.detail, str) else self.detail(signal, facts)
            expiry = self.ban_expiry(signal) if self.ban_expiry is not None else None
            return Closed(facts.generation, self.reason, detail, expiry)
        return _BUILD[self.reports](signal, facts)


def translate(signal: object, facts: LinkFacts) -> LinkEvent | None:
    """The event a link reports for ``signal`` (None: nothing), by the first row that matches."""
    for row in _ROWS_BY_SIGNAL.get(type(signal), ()):
        if row.when is None or row.when(signal, facts):
            return row.report(signal, facts)
    return None


# --- conditions and details the rows use (each reads one thing) -------------------------------


def _status(status: str) -> Condition:
    return lambda signal, _: signal.status == status


def _reason(reason: int) -> Condition:
    """The event's ConnectFailureReason is ``reason`` (and was set)."""
    return lambda event, _: event.HasField("Reason") and event.Reason == reason


def _pair_succeeded(event: Any, _: LinkFacts) -> bool:
    return bool(event.Status == ev.PairStatusEv.SUCCESS)


def _silent_for(event: Any, facts: LinkFacts) -> float:
    return facts.now_s - event.LastSuccess if event.LastSuccess > 0 else 0.0


def _keepalive_lost(event: Any, facts: LinkFacts) -> bool:
    return bool(
        event.ErrorCount >= KEEPALIVE_MAX_ERRORS
        or _silent_for(event, facts) > KEEPALIVE_MAX_SILENCE_S
    )


def _keepalive_detail(event: Any, facts: LinkFacts) -> str:
    silent_for = _silent_for(event, facts)
    return f"{event.ErrorCount} keep-alive pings failed, last success {silent_for:.0f} s ago"


def _logged_out(code: int) -> Callable[[Any, LinkFacts], str]:
    return lambda event, _: (
        f"{code} logged out {'on connect' if event.OnConnect else 'while connected'}"
    )


def _failure(code: int) -> Callable[[Any, LinkFacts], str]:
    return lambda event, _: f"connect failure {code}{_message(event)}"


def _failure_raw(event: Any, _: LinkFacts) -> str:
    """A failure neonize could not encode: WhatsApp's code read from the raw node."""
    raw = ""
    for attr in event.Raw.Attrs:  # the <failure reason=...> node
        if attr.name == "reason" and attr.WhichOneof("Value") in ("integer", "text"):
            raw = f" {getattr(attr, attr.WhichOneof('Value'))}"
    return f"connect failure{raw}{_message(event)}"


def _message(event: Any) -> str:
    return f": {event.Message}" if event.Message else ""


# TemporaryBanEv.TempBanReason -> WhatsApp's ban code
_BAN_CODES = {1: 101, 2: 102, 3: 103, 4: 104, 5: 106}


def _ban_detail(event: Any, _: LinkFacts) -> str:
    if not event.HasField("Code"):
        return "402 temporary ban (reason not given)"
    name = ev.TemporaryBanEv.TempBanReason.Name(event.Code).lower().replace("_", " ")
    return f"402 temporary ban, code {_BAN_CODES.get(event.Code, '?')} ({name})"


def _ban_expiry(event: Any) -> float | None:
    return float(event.Expire) if event.Expire > 0 else None


def _from_someone(event: Any, _: LinkFacts) -> bool:
    return is_from_someone(event)


def _ack(event: Any, _: LinkFacts) -> bool:
    return is_ack(event)


def _unavailable(event: Any, _: LinkFacts) -> bool:
    """The sender sent no ciphertext at all: not a sign of bad keys."""
    return bool(event.IsUnavailable)


# How a row makes each event other than Closed (each is made from one kind of signal).
_BUILD: dict[type[LinkEvent], Callable[[Any, LinkFacts], LinkEvent]] = {
    Qr: lambda shown, facts: Qr(facts.generation, shown.code),
    Paired: lambda event, facts: Paired(facts.generation, jid_string(event.ID)),
    Connected: lambda _, facts: Connected(facts.generation, facts.jid),
    MessageReceived: lambda event, facts: inbound_message(event, facts.generation),
    Receipt: lambda event, facts: receipt(event, facts.generation),
    Undecryptable: lambda event, facts: Undecryptable(
        facts.generation, event.Info.ID, sender_of(event.Info.MessageSource)
    ),
}


# --- THE TABLE ----------------------------------------------------------------------------------
#
# In the order a link's life meets them. `ev` is neonize.events, `F` neonize's
# ConnectFailureReason, `R` wamgr's CloseReason. What each close reason leads to (state,
# reconnect, credentials, lease) is the policy's table, wamgr/policy.py `_RULES`.

# fmt: off
TABLE: tuple[Row, ...] = (
    # wamgr, and the link's runner thread (before and around connect())
    Row(CloseAsked, None, Closed, R.REQUESTED, "closed by wamgr"),
    Row(DeviceMissing, None, Closed, R.LOGGED_OUT, lambda s, _: (
        f"no keys for device {s.jid} in the auth store (deleted by WhatsApp's logout or by "
        "clear-auth)")),
    Row(ConnectRaised, None, Closed, R.DIAL_FAILED,
        lambda s, _: s.message or "connect() failed without a message"),
    Row(ConnectReturned, None, Closed, R.NETWORK, "the neonize client stopped without an event"),

    # pairing: the QR callback, then the login-status callback when the QR loop ends
    Row(QrShown, None, Qr),
    Row(LoginEnded, _status("success"), None),  # Go goes on: PairStatusEv, then ConnectedEv
    Row(LoginEnded, _status("timeout"), Closed, R.PAIRING_TIMEOUT,
        "no phone scanned the QR code in time (WhatsApp shows codes for 160 s)"),
    Row(LoginEnded, _status("err-client-outdated"), Closed, R.CLIENT_OUTDATED,
        "client outdated while pairing"),
    Row(LoginEnded, _status("err-scanned-without-multidevice"), Closed, R.CONNECT_FAILURE,
        "the phone that scanned the code has multi-device turned off"),
    Row(LoginEnded, _status("err-unexpected-state"), Closed, R.CONNECT_FAILURE,
        "pairing ended in an unexpected state"),
    Row(LoginEnded, _status("error"), Closed, R.NETWORK, "the connection broke while pairing"),
    Row(LoginEnded, None, Closed, R.CONNECT_FAILURE, lambda s, _: f"pairing ended: {s.status}"),
    Row(ev.PairStatusEv, _pair_succeeded, Paired),  # the tenant stores the device JID
    Row(ev.PairStatusEv, None, Closed, R.CONNECT_FAILURE,
        lambda e, _: f"pairing failed: {e.Error or 'unknown'}"),

    # logged in
    Row(ev.ConnectedEv, None, Connected),

    # the socket's health while connected
    Row(ev.KeepAliveTimeoutEv, _keepalive_lost, Closed, R.KEEPALIVE_TIMEOUT, _keepalive_detail),
    Row(ev.KeepAliveTimeoutEv, None, None),  # within limits: whatsmeow keeps pinging
    Row(ev.KeepAliveRestoredEv, None, None),
    Row(ev.StreamErrorEv, None, Closed, R.STREAM_ERROR,
        lambda e, _: f"stream error {e.Code or '(no code)'}"),
    Row(ev.DisconnectedEv, None, Closed, R.NETWORK, "disconnected by the server or the network"),

    # WhatsApp ends the session (no DisconnectedEv follows these)
    Row(ev.StreamReplacedEv, None, Closed, R.REPLACED, "stream replaced (440 conflict)"),
    Row(ev.LoggedOutEv, _reason(F.MAIN_DEVICE_GONE), Closed, R.MAIN_DEVICE_GONE, _logged_out(403)),
    Row(ev.LoggedOutEv, _reason(F.UNKNOWN_LOGOUT), Closed, R.UNKNOWN_LOGOUT, _logged_out(406)),
    Row(ev.LoggedOutEv, None, Closed, R.LOGGED_OUT, _logged_out(401)),  # LOGGED_OUT, unset, other
    Row(ev.TemporaryBanEv, None, Closed, R.TEMPORARY_BAN, _ban_detail, _ban_expiry),
    Row(ev.ClientOutdatedEv, None, Closed, R.CLIENT_OUTDATED, "405 client outdated"),

    # WhatsApp refuses the login: ConnectFailureEv.Reason (neonize's enum; WhatsApp's code)
    Row(ev.ConnectFailureEv, _reason(F.GENERIC), Closed, R.CONNECT_FAILURE, _failure(400)),
    Row(ev.ConnectFailureEv, _reason(F.LOGGED_OUT), Closed, R.LOGGED_OUT, _failure(401)),
    Row(ev.ConnectFailureEv, _reason(F.TEMP_BANNED), Closed, R.TEMPORARY_BAN, _failure(402)),
    Row(ev.ConnectFailureEv, _reason(F.MAIN_DEVICE_GONE), Closed, R.MAIN_DEVICE_GONE,
        _failure(403)),
    Row(ev.ConnectFailureEv, _reason(F.CLIENT_OUTDATED), Closed, R.CLIENT_OUTDATED,
        _failure(405)),
    Row(ev.ConnectFailureEv, _reason(F.UNKNOWN_LOGOUT), Closed, R.UNKNOWN_LOGOUT, _failure(406)),
    Row(ev.ConnectFailureEv, _reason(F.BAD_USER_AGENT), Closed, R.BAD_USER_AGENT, _failure(409)),
    Row(ev.ConnectFailureEv, _reason(F.INTERNAL_SERVER_ERROR), Closed, R.SERVER_ERROR,
        _failure(500)),
    Row(ev.ConnectFailureEv, _reason(F.EXPERIMENTAL), Closed, R.CONNECT_FAILURE, _failure(501)),
    Row(ev.ConnectFailureEv, _reason(F.SERVICE_UNAVAILABLE), Closed, R.SERVER_ERROR,
        _failure(503)),
    Row(ev.ConnectFailureEv, None, Closed, R.CONNECT_FAILURE,  # unset (415, …): read from Raw
        _failure_raw),

    # messages
    Row(ev.MessageEv, _from_someone, MessageReceived),  # any kind (messages.py), groups too
    Row(ev.MessageEv, None, None),  # ours, a status update, or of no kind wamgr reports
    Row(ev.ReceiptEv, _ack, Receipt),  # delivered, read, played (of messages we sent)
    Row(ev.ReceiptEv, None, None),  # our own devices' receipts, retries, server errors
    Row(ev.UndecryptableMessageEv, _unavailable, None),
    Row(ev.UndecryptableMessageEv, None, Undecryptable),  # the tenant counts them
)
# fmt: on

#: Events neonize could forward that no row names: the link does not register for them, so
#: Go drops them. ``Device`` (code 0) is not here either: neonize keeps it as ``client.me``
#: itself, and the link only uses its arrival to release its start hold (``link.py``).
NOT_SUBSCRIBED: tuple[type, ...] = (
    ev.QREv,  # the codes come through the QR callback instead (QrShown)
    ev.HistorySyncEv,
    ev.NewsLetterMessageMetaEv,
    ev.ChatPresenceEv,
    ev.PresenceEv,
    ev.JoinedGroupEv,
    ev.GroupInfoEv,
    ev.PictureEv,
    ev.IdentityChangeEv,
    ev.PrivacySettingsEv,
    ev.OfflineSyncPreviewEv,
    ev.OfflineSyncCompletedEv,
    ev.BlocklistEv,
    ev.BlocklistChangeEv,
    ev.NewsletterJoinEv,
    ev.NewsletterLeaveEv,
    ev.NewsletterMuteChangeEv,
    ev.NewsletterLiveUpdateEV,
    ev.CallOfferEv,
    ev.CallAcceptEv,
    ev.CallPreAcceptEv,
    ev.CallTransportEv,
    ev.CallOfferNoticeEv,
    ev.CallRelayLatencyEV,
    ev.CallTerminateEv,
    ev.UnknownCallEventEV,
    ev.RotateADVSecretEv,
)

_ROWS_BY_SIGNAL: dict[type, tuple[Row, ...]] = {}
for _row in TABLE:
    _ROWS_BY_SIGNAL[_row.signal] = (*_ROWS_BY_SIGNAL.get(_row.signal, ()), _row)
del _row

_OWN_SIGNALS = (CloseAsked, DeviceMissing, ConnectRaised, ConnectReturned, QrShown, LoginEnded)

#: The neonize events a link registers for (Go forwards only what was registered before
#: ``connect()``): those the table names.
SUBSCRIBED: tuple[type, ...] = tuple(s for s in _ROWS_BY_SIGNAL if s not in _OWN_SIGNALS)
