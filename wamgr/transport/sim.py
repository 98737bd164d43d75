"""A simulated WhatsApp server that is also a :class:`~wamgr.transport.base.Transport`.

:class:`SimWhatsApp` behaves the way WhatsApp does where wamgr cares: pairing by QR creates
an account, a second socket for an account replaces the first (the old one is closed with
440 conflict), a logged-out device cannot resume, and the server can close a socket for any
reason wamgr knows. It records every socket's open and close times, so a test can prove that
no account ever had two sockets at once (:meth:`SimWhatsApp.max_concurrent_sockets`).

It is cheap enough for 10,000 tenants: no thread per socket, one lock over all state, and
``on_event`` callbacks run outside that lock. Events of one link are delivered in order and
never concurrently, even when several threads act on the same link.
"""

from __future__ import annotations

import enum
import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from loguru import logger

from wamgr.clock import Clock, SystemClock
from wamgr.transport.base import (
    Closed,
    CloseReason,
    Connected,
    EventCallback,
    LinkEvent,
    MessageReceived,
    Paired,
    Qr,
    Undecryptable,
)

REPLACED_DETAIL = "stream replaced (440 conflict)"
DEFAULT_DIAL_FAILURE = "dial tcp: connection refused"
DEFAULT_SENDER = "15550009999@s.whatsapp.net"

# Reasons the server side can close a socket with (:meth:`SimWhatsApp.drop`), and the detail
# a real client would report when the caller gives none.
DROP_DETAILS: dict[CloseReason, str] = {
    CloseReason.NETWORK: "read tcp: connection reset by peer",
    CloseReason.KEEPALIVE_TIMEOUT: "websocket keepalive timed out",
    CloseReason.STREAM_ERROR: "unknown stream error",
    CloseReason.SERVER_ERROR: "503 service unavailable",
    CloseReason.REPLACED: REPLACED_DETAIL,
    CloseReason.LOGGED_OUT: "401 logged out",
    CloseReason.MAIN_DEVICE_GONE: "403 main device gone",
    CloseReason.UNKNOWN_LOGOUT: "406 unknown logout",
    CloseReason.TEMPORARY_BAN: "402 temporary ban",
    CloseReason.CLIENT_OUTDATED: "405 client outdated",
    CloseReason.BAD_USER_AGENT: "409 bad user agent",
    CloseReason.CONNECT_FAILURE: "connect failure",
    CloseReason.CORRUPTED_KEYS: "too many undecryptable messages",
}
# Drop reasons after which the device is unlinked: later resumes get LOGGED_OUT.
UNLINKING_REASONS = frozenset(
    {CloseReason.LOGGED_OUT, CloseReason.MAIN_DEVICE_GONE, CloseReason.UNKNOWN_LOGOUT}
)


# The links that got events during one operation, in order (a dict used as an ordered set);
# they are delivered once the lock is released.
_Touched = dict["SimLink", None]


class SimNotConnected(RuntimeError):
    """Raised when sending or delivering needs a connected socket and there is none."""


@dataclass(frozen=True, slots=True)
class SocketRecord:
    """One socket's life for one account; times are ``clock.monotonic()`` seconds.

    ``tenant_id`` is None for a socket opened by a client outside wamgr (a rogue).
    ``closed_at`` and ``close_reason`` are None while the socket is open.
    """

    socket_id: int
    jid: str
    tenant_id: str | None
    opened_at: float
    closed_at: float | None
    close_reason: CloseReason | None


class _LinkState(enum.StrEnum):
    NEW = "new"  # built, open() not called yet
    PARKED = "parked"  # open() called while dials are held
    PAIRING = "pairing"  # pairing socket open, QR shown
    CONNECTED = "connected"  # account socket open and logged in
    CLOSED = "closed"  # Closed reported; nothing follows


class _Socket:
    """A socket logged in to an account (mutable; :class:`SocketRecord` is its snapshot)."""

    __slots__ = ("close_reason", "closed_at", "jid", "link", "opened_at", "socket_id", "tenant_id")

    def __init__(self, socket_id: int, jid: str, link: SimLink | None, opened_at: float):
        self.socket_id = socket_id
        self.jid = jid
        self.link = link
        self.tenant_id = link.tenant_id if link is not None else None
        self.opened_at = opened_at
        self.closed_at: float | None = None
        self.close_reason: CloseReason | None = None

    def record(self) -> SocketRecord:
        return SocketRecord(
            self.socket_id,
            self.jid,
            self.tenant_id,
            self.opened_at,
            self.closed_at,
            self.close_reason,
        )


class _SocketLog:
    """Every socket ever opened for one JID, and the ones open now (oldest first)."""

    __slots__ = ("all", "collisions", "max_concurrent", "open")

    def __init__(self) -> None:
        self.all: list[_Socket] = []
        self.open: list[_Socket] = []
        self.max_concurrent = 0
        self.collisions = 0


class _Account:
    """A WhatsApp account with its one linked device."""

    __slots__ = ("device_linked", "jid", "logouts", "sent")

    def __init__(self, jid: str) -> None:
        self.jid = jid
        self.device_linked = True
        self.logouts = 0
        self.sent: list[tuple[str, str, str]] = []


class SimLink:
    """A link to :class:`SimWhatsApp`: one socket's life for one tenant.

    Built by :meth:`SimWhatsApp.create_link`. It keeps the promises of
    :class:`~wamgr.transport.base.Link`: ``open`` and ``close`` never block, events arrive
    in order through ``on_event`` (possibly before ``open`` returns), and exactly one
    ``Closed`` event is reported, after which nothing follows.
    """

    def __init__(
        self,
        sim: SimWhatsApp,
        tenant_id: str,
        jid: str | None,
        generation: int,
        on_event: EventCallback,
    ) -> None:
        self.tenant_id = tenant_id
        self.generation = generation
        self._sim = sim
        self._on_event = on_event
        # Everything below is guarded by the simulator's lock.
        self._jid = jid
        self._state = _LinkState.NEW
        self._socket: _Socket | None = None
        self._qr: str | None = None
        self._outbox: deque[LinkEvent] = deque()
        self._delivering = False

    @property
    def jid(self) -> str | None:
        """The account this link resumes or paired with; None while pairing."""
        with self._sim._lock:
            return self._jid

    def open(self) -> None:
        """Dial the simulator without blocking; raises RuntimeError if called a second time."""
        self._sim._open(self)

    def close(self, do_logout: bool) -> None:
        """Close the socket and report ``Closed(REQUESTED)``; a closed link ignores this.

        With ``do_logout``, a logged-in socket first unlinks its device (later resumes of the
        JID get ``LOGGED_OUT``).
        """
        self._sim._close_link(self, do_logout)

    def send_text(self, to: str, text: str) -> str:
        """Record a sent message and return its new id; raises SimNotConnected if not connected."""
        return self._sim._send_text(self, to, text)

    def request_pair_code(self, phone: str) -> str:
        """A code the phone can type instead of scanning the QR (see SimWhatsApp.enter_code)."""
        return self._sim._pair_code(self, phone)

    def __repr__(self) -> str:
        return (
            f"SimLink(tenant_id={self.tenant_id!r}, generation={self.generation}, "
            f"jid={self._jid!r}, state={self._state.value})"
        )


class SimWhatsApp:
    """An in-process simulated WhatsApp server, and a Transport whose links dial it.

    Thread-safe: one lock guards all state and no callback runs under it. With
    ``auto_pair`` a new device is paired as soon as its QR is shown; otherwise a test
    pairs it with :meth:`scan`. Socket times come from ``clock`` (default: the system's).
    """

    def __init__(self, auto_pair: bool = False, clock: Clock | None = None) -> None:
        self._auto_pair = auto_pair
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._lock = threading.Lock()
        self._closed = False
        self._accounts: dict[str, _Account] = {}
        self._logs: dict[str, _SocketLog] = {}
        self._pending: dict[str, SimLink] = {}  # QR code -> pairing link, oldest first
        self._pair_codes: dict[str, str] = {}  # pair code -> QR code of the same link
        self._parked: dict[SimLink, None] = {}  # an ordered set
        self._holding = False
        self._fail_next = 0
        self._fail_detail = DEFAULT_DIAL_FAILURE
        self._attempts: dict[str, int] = {}
        self._attempts_total = 0
        self._open_count = 0
        self._max_concurrent = 0
        self._numbers = itertools.count(1)
        self._qr_ids = itertools.count(1)
        self._socket_ids = itertools.count(1)
        self._message_ids = itertools.count(1)

    # --- Transport --------------------------------------------------------------------

    def create_link(
        self, tenant_id: str, jid: str | None, generation: int, on_event: EventCallback
    ) -> SimLink:
        """Build an unopened link that resumes ``jid``, or pairs a new device when None."""
        return SimLink(self, tenant_id, jid, generation, on_event)

    def clear_auth(self, tenant_id: str, jid: str | None) -> None:
        """Forget the device of ``jid``: later resumes get LOGGED_OUT. Unknown/None: no-op.

        Open sockets stay open (the keys are gone from the client, not the server).
        """
        with self._lock:
            account = self._accounts.get(jid) if jid is not None else None
            if account is not None:
                account.device_linked = False

    def close(self) -> None:
        """Mark the simulator closed and drop parked dials, without reporting any event.

        Later ``open()`` calls report ``Closed(DIAL_FAILED, "simulator closed")``; links that
        are still open stay so until closed (the manager closes its links first).
        """
        with self._lock:
            self._closed = True
            self._parked.clear()

    # --- pairing ----------------------------------------------------------------------

    def pending_pairings(self) -> list[str]:
        """QR codes shown by pairing links and not scanned yet, oldest first."""
        with self._lock:
            return list(self._pending)

    def scan(self, code: str) -> str:
        """The phone scans ``code``: a new account is created and its JID returned.

        The pairing link reports ``Paired`` then ``Connected``. Raises ValueError for a code
        that is not pending.
        """
        touched: _Touched = {}
        with self._lock:
            link = self._pending.pop(code, None)
            if link is None:
                raise ValueError(f"unknown or expired QR code: {code!r}")
            jid = self._pair(link, touched)
        self._deliver(touched)
        return jid

    def enter_code(self, code: str) -> str:
        """The phone types a pair code: like :meth:`scan`, for a code from request_pair_code."""
        with self._lock:
            qr = self._pair_codes.pop(code, None)
        if qr is None:
            raise ValueError(f"unknown or expired pair code: {code!r}")
        return self.scan(qr)

    def _pair_code(self, link: SimLink, phone: str) -> str:
        with self._lock:
            if link._qr is None or self._pending.get(link._qr) is not link:
                raise SimNotConnected("the link is not waiting for pairing")
            code = f"{len(self._pair_codes) + 1:04d}-{phone[-4:]:0>4}"
            self._pair_codes[code] = link._qr
            return code

    # --- dial control -----------------------------------------------------------------

    def hold_dials(self) -> None:
        """Park every later ``open()`` (no event, no socket) until :meth:`release_dials`."""
        with self._lock:
            self._holding = True

    def release_dials(self) -> int:
        """Stop holding and complete the parked dials in order; returns how many there were."""
        touched: _Touched = {}
        with self._lock:
            self._holding = False
            parked, self._parked = list(self._parked), {}
            for link in parked:
                self._complete_dial(link, touched)
        self._deliver(touched)
        return len(parked)

    def parked_dials(self) -> int:
        """How many dials are parked by :meth:`hold_dials` right now."""
        with self._lock:
            return len(self._parked)

    def fail_dials(self, n: int, detail: str = DEFAULT_DIAL_FAILURE) -> None:
        """Make the next ``n`` dials report ``Closed(DIAL_FAILED, detail)`` with no socket."""
        if n < 0:
            raise ValueError(f"fail_dials needs n >= 0, got {n}")
        with self._lock:
            self._fail_next = n
            self._fail_detail = detail

    def dial_attempts(self, tenant_id: str | None = None) -> int:
        """How many times ``open()`` was called, for one tenant or for all of them."""
        with self._lock:
            if tenant_id is None:
                return self._attempts_total
            return self._attempts.get(tenant_id, 0)

    # --- fault injection and traffic --------------------------------------------------

    def drop(
        self, jid: str, reason: str, *, detail: str = "", ban_expires_in_s: float = 3600.0
    ) -> bool:
        """Close the open socket of ``jid`` from the server side with ``reason``.

        ``reason`` is a CloseReason value from :data:`DROP_DETAILS` (ValueError otherwise);
        an empty ``detail`` becomes that reason's usual text. ``logged_out``,
        ``main_device_gone`` and ``unknown_logout`` also unlink the device, even when no
        socket is open. ``temporary_ban`` reports ``ban_expires_in_s``. Returns whether a
        socket was open and dropped.
        """
        close_reason = _drop_reason(reason)
        ban = ban_expires_in_s if close_reason is CloseReason.TEMPORARY_BAN else None
        touched: _Touched = {}
        with self._lock:
            account = self._accounts.get(jid)
            if account is not None and close_reason in UNLINKING_REASONS:
                account.device_linked = False
            log = self._logs.get(jid)
            open_sockets = list(log.open) if log is not None else []
            for sock in open_sockets:
                self._close_socket(
                    sock, close_reason, detail or DROP_DETAILS[close_reason], ban, touched
                )
        self._deliver(touched)
        return bool(open_sockets)

    def connect_rogue(self, jid: str) -> None:
        """A client outside wamgr logs in as ``jid``; the open socket (if any) is replaced.

        Raises ValueError for an unknown account.
        """
        touched: _Touched = {}
        with self._lock:
            if jid not in self._accounts:
                raise ValueError(f"unknown account: {jid!r}")
            self._open_socket(jid, None, touched)
        self._deliver(touched)

    def disconnect_rogue(self, jid: str) -> bool:
        """Close the rogue socket of ``jid``; returns whether one was open."""
        with self._lock:
            log = self._logs.get(jid)
            rogues = [s for s in log.open if s.link is None] if log is not None else []
            for sock in rogues:
                self._close_socket(sock, CloseReason.REQUESTED, "", None, {})
        return bool(rogues)

    def inbound(self, jid: str, sender: str, text: str, message_id: str | None = None) -> str:
        """Deliver a text from ``sender`` to the open socket of ``jid``; returns its id.

        Passing the id of an earlier message redelivers it, as WhatsApp sometimes does.
        Raises SimNotConnected when no socket is open for ``jid``.
        """
        return self._push(jid, message_id, lambda gen, mid: MessageReceived(gen, mid, sender, text))

    def undecryptable(
        self, jid: str, sender: str = DEFAULT_SENDER, message_id: str | None = None
    ) -> str:
        """Deliver a message the socket of ``jid`` cannot decrypt; returns its id.

        Raises SimNotConnected when no socket is open for ``jid``.
        """
        return self._push(jid, message_id, lambda gen, mid: Undecryptable(gen, mid, sender))

    # --- observation ------------------------------------------------------------------

    def max_concurrent_sockets(self, jid: str | None = None) -> int:
        """Most sockets ever open at one moment for ``jid`` (or for any one account)."""
        with self._lock:
            if jid is None:
                return self._max_concurrent
            log = self._logs.get(jid)
            return log.max_concurrent if log is not None else 0

    def collisions(self, jid: str) -> int:
        """How many times a socket opened for ``jid`` while another one was open."""
        with self._lock:
            log = self._logs.get(jid)
            return log.collisions if log else 0

    def sockets(self, jid: str) -> list[SocketRecord]:
        """Every socket opened for ``jid``, oldest first (empty for an unknown JID)."""
        with self._lock:
            log = self._logs.get(jid)
            return [s.record() for s in log.all] if log is not None else []

    def open_sockets(self, jid: str | None = None) -> int:
        """Sockets logged in right now, for ``jid`` or in total (pairing sockets excluded)."""
        with self._lock:
            if jid is None:
                return self._open_count
            log = self._logs.get(jid)
            return len(log.open) if log is not None else 0

    def accounts(self) -> list[str]:
        """JIDs of every account ever paired, in pairing order."""
        with self._lock:
            return list(self._accounts)

    def logouts(self, jid: str) -> int:
        """How many times a link of ``jid`` logged out with ``close(do_logout=True)``."""
        with self._lock:
            account = self._accounts.get(jid)
            return account.logouts if account is not None else 0

    def sent_messages(self, jid: str) -> list[tuple[str, str, str]]:
        """Messages sent by links of ``jid`` as ``(to, text, message_id)``, oldest first."""
        with self._lock:
            account = self._accounts.get(jid)
            return list(account.sent) if account is not None else []

    def stats(self) -> dict[str, int]:
        """``max_concurrent_sockets``, ``accounts`` and ``open_sockets`` as integers."""
        with self._lock:
            return {
                "max_concurrent_sockets": self._max_concurrent,
                "accounts": len(self._accounts),
                "open_sockets": self._open_count,
            }

    # --- link operations (called by SimLink) ------------------------------------------

    def _open(self, link: SimLink) -> None:
        touched: _Touched = {}
        with self._lock:
            if link._state is not _LinkState.NEW:
                raise RuntimeError(f"{link!r} was already opened or closed; build a new link")
            self._attempts[link.tenant_id] = self._attempts.get(link.tenant_id, 0) + 1
            self._attempts_total += 1
            if self._closed:
                self._finish(link, CloseReason.DIAL_FAILED, "simulator closed", touched)
            elif self._holding:
                link._state = _LinkState.PARKED
                self._parked[link] = None
            else:
                self._complete_dial(link, touched)
        self._deliver(touched)

    def _close_link(self, link: SimLink, do_logout: bool) -> None:
        touched: _Touched = {}
        with self._lock:
            if link._state is _LinkState.CLOSED:
                return
            self._parked.pop(link, None)
            if link._state is _LinkState.PAIRING and link._qr is not None:
                self._pending.pop(link._qr, None)
            if link._socket is not None:
                account = self._accounts.get(link._socket.jid)
                if do_logout and account is not None:
                    account.device_linked = False
                    account.logouts += 1
                self._close_socket(link._socket, CloseReason.REQUESTED, "", None, touched)
            else:
                self._finish(link, CloseReason.REQUESTED, "", touched)
        self._deliver(touched)

    def _send_text(self, link: SimLink, to: str, text: str) -> str:
        with self._lock:
            if link._state is not _LinkState.CONNECTED or link._socket is None:
                raise SimNotConnected(
                    f"cannot send: link of tenant {link.tenant_id!r} (generation "
                    f"{link.generation}) is {link._state.value}, not connected"
                )
            message_id = self._new_message_id()
            self._accounts[link._socket.jid].sent.append((to, text, message_id))
            return message_id

    # --- state changes (lock held) ----------------------------------------------------

    def _complete_dial(self, link: SimLink, touched: _Touched) -> None:
        if self._fail_next > 0:
            self._fail_next -= 1
            self._finish(link, CloseReason.DIAL_FAILED, self._fail_detail, touched)
        elif link._jid is None:
            link._state = _LinkState.PAIRING
            link._qr = f"2@sim-qr-{next(self._qr_ids):06d}"
            self._emit(link, Qr(link.generation, link._qr), touched)
            if self._auto_pair:
                self._pair(link, touched)
            else:
                self._pending[link._qr] = link
        else:
            account = self._accounts.get(link._jid)
            if account is None or not account.device_linked:
                self._reject(link, link._jid, touched)
            else:
                self._open_socket(link._jid, link, touched)

    def _pair(self, link: SimLink, touched: _Touched) -> str:
        jid = f"1555{next(self._numbers):07d}@s.whatsapp.net"
        self._accounts[jid] = _Account(jid)
        link._jid = jid
        link._qr = None
        self._emit(link, Paired(link.generation, jid), touched)
        self._open_socket(jid, link, touched)
        return jid

    def _open_socket(self, jid: str, link: SimLink | None, touched: _Touched) -> None:
        """Log a socket in; every older socket of the account is then replaced (440)."""
        log = self._logs.setdefault(jid, _SocketLog())
        sock = _Socket(next(self._socket_ids), jid, link, self._clock.monotonic())
        older = list(log.open)
        self._count_open(log, sock)
        if link is not None:
            link._state = _LinkState.CONNECTED
            link._socket = sock
            self._emit(link, Connected(link.generation, jid), touched)
        for old in older:
            self._close_socket(old, CloseReason.REPLACED, REPLACED_DETAIL, None, touched)

    def _reject(self, link: SimLink, jid: str, touched: _Touched) -> None:
        """The socket opens, the login is refused (401): counted as opened and closed."""
        log = self._logs.setdefault(jid, _SocketLog())
        sock = _Socket(next(self._socket_ids), jid, link, self._clock.monotonic())
        self._count_open(log, sock)
        detail = f"device {jid} is not linked (401 logged out)"
        self._close_socket(sock, CloseReason.LOGGED_OUT, detail, None, touched)

    def _count_open(self, log: _SocketLog, sock: _Socket) -> None:
        log.all.append(sock)
        log.open.append(sock)
        if len(log.open) > 1:
            log.collisions += 1
        log.max_concurrent = max(log.max_concurrent, len(log.open))
        self._max_concurrent = max(self._max_concurrent, log.max_concurrent)
        self._open_count += 1

    def _close_socket(
        self,
        sock: _Socket,
        reason: CloseReason,
        detail: str,
        ban_expires_in_s: float | None,
        touched: _Touched,
    ) -> None:
        sock.closed_at = self._clock.monotonic()
        sock.close_reason = reason
        self._logs[sock.jid].open.remove(sock)
        self._open_count -= 1
        if sock.link is not None:
            self._finish(sock.link, reason, detail, touched, ban_expires_in_s)

    def _finish(
        self,
        link: SimLink,
        reason: CloseReason,
        detail: str,
        touched: _Touched,
        ban_expires_in_s: float | None = None,
    ) -> None:
        link._state = _LinkState.CLOSED
        link._socket = None
        link._qr = None
        self._emit(link, Closed(link.generation, reason, detail, ban_expires_in_s), touched)

    def _emit(self, link: SimLink, event: LinkEvent, touched: _Touched) -> None:
        link._outbox.append(event)
        touched[link] = None

    def _push(
        self, jid: str, message_id: str | None, build: Callable[[int, str], LinkEvent]
    ) -> str:
        """Deliver the event ``build(generation, message_id)`` to the open socket of ``jid``."""
        touched: _Touched = {}
        with self._lock:
            sock = self._open_socket_of(jid)
            message_id = message_id or self._new_message_id()
            if sock.link is not None:
                self._emit(sock.link, build(sock.link.generation, message_id), touched)
        self._deliver(touched)
        return message_id

    def _open_socket_of(self, jid: str) -> _Socket:
        log = self._logs.get(jid)
        if log is None or not log.open:
            raise SimNotConnected(f"no socket is open for {jid}")
        return log.open[-1]

    def _new_message_id(self) -> str:
        return f"3EB0{next(self._message_ids):016X}"

    # --- delivery (lock not held) -----------------------------------------------------

    def _deliver(self, links: Iterable[SimLink]) -> None:
        """Run the queued callbacks of ``links`` outside the lock, in order, one at a time.

        A link's events are delivered by one thread at a time: a thread that finds another
        delivering for the link leaves its events to that thread, which drains the queue.
        """
        for link in links:
            with self._lock:
                if link._delivering or not link._outbox:
                    continue
                link._delivering = True
                event = link._outbox.popleft()
            try:
                while True:
                    try:
                        link._on_event(event)
                    except Exception:
                        logger.exception(
                            "on_event of tenant {} (generation {}) failed on {!r}",
                            link.tenant_id,
                            link.generation,
                            event,
                        )
                    with self._lock:
                        if not link._outbox:
                            link._delivering = False
                            break
                        event = link._outbox.popleft()
            except BaseException:  # KeyboardInterrupt and the like: let the next caller deliver
                with self._lock:
                    link._delivering = False
                raise


def _drop_reason(reason: str) -> CloseReason:
    """The CloseReason a server-side drop reports for ``reason``; ValueError if not allowed."""
    for close_reason in DROP_DETAILS:
        if close_reason.value == reason:
            return close_reason
    allowed = ", ".join(r.value for r in DROP_DETAILS)
    raise ValueError(f"unknown drop reason {reason!r}; allowed: {allowed}")
