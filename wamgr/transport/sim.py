"""A simulated WhatsApp server that is also a :class:`~wamgr.transport.base.Transport`.

:class:`SimWhatsApp` behaves the way WhatsApp does where wamgr cares: pairing by QR creates
an account, a second socket for an account replaces the first (the old one is closed with
440 conflict), a logged-out device cannot resume, and the server can close a socket for any
reason wamgr knows. It records every socket's open and close times, so a test can prove that
no account ever had two sockets at once (:meth:`SimWhatsApp.max_concurrent_sockets`).

It is cheap enough for 10,000 tenants: no thread per socket, one lock over all state, and
``on_event`` callbacks run outside that lock. Events of one link are delivered in order and
never concurrently, even when several threads act on the same link.

The parts, one module each: the server's state and its transitions (:mod:`.sim_core`), the
links and their event delivery (:mod:`.sim_link`), the socket records (:mod:`.sim_recorder`)
and the accounts with their devices, optionally kept in a file so a restarted simulator
resumes them (:mod:`.sim_devices`). This module is the public face: the Transport, and the
verbs a test or demo uses to pair, fail, drop and observe.
"""

from __future__ import annotations

from pathlib import Path

from wamgr.transport.base import CloseReason, EventCallback, MessageReceived, Undecryptable
from wamgr.transport.sim_core import DEFAULT_DIAL_FAILURE, REPLACED_DETAIL, SimCore
from wamgr.transport.sim_link import SimLink, SimNotConnected, Touched
from wamgr.transport.sim_recorder import SocketRecord

__all__ = [
    "DEFAULT_DIAL_FAILURE",
    "REPLACED_DETAIL",
    "SimLink",
    "SimNotConnected",
    "SimWhatsApp",
    "SocketRecord",
]

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


class SimWhatsApp(SimCore):
    """An in-process simulated WhatsApp server, and a Transport whose links dial it.

    Thread-safe: one lock guards all state and no callback runs under it. With
    ``auto_pair`` a new device is paired as soon as its QR is shown; otherwise a test
    pairs it with :meth:`scan`. Socket times come from ``clock`` (default: the system's).
    With ``devices_file`` the accounts and their devices are kept in that file and read
    back by the next simulator built on it; without, they live in memory only.
    """

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
            account = self._devices.get(jid) if jid is not None else None
            if account is not None:
                self._devices.unlink(account)
        self._settle({})

    def close(self) -> None:
        """Mark the simulator closed and drop parked dials, without reporting any event.

        Later ``open()`` calls report ``Closed(DIAL_FAILED, "simulator closed")``; links that
        are still open stay so until closed (the manager closes its links first). The
        devices file, if any, is brought up to date.
        """
        with self._lock:
            self._closed = True
            self._parked.clear()
        self._devices.save()

    @property
    def devices_file(self) -> Path | None:
        """The file the accounts are kept in, or None (memory only)."""
        return self._devices.path

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
        touched: Touched = {}
        with self._lock:
            link = self._pending.pop(code, None)
            if link is None:
                raise ValueError(f"unknown or expired QR code: {code!r}")
            jid = self._pair(link, touched)
        self._settle(touched)
        return jid

    def enter_code(self, code: str) -> str:
        """The phone types a pair code: like :meth:`scan`, for a code from request_pair_code."""
        with self._lock:
            qr = self._pair_codes.pop(code, None)
        if qr is None:
            raise ValueError(f"unknown or expired pair code: {code!r}")
        return self.scan(qr)

    # --- dial control -----------------------------------------------------------------

    def hold_dials(self) -> None:
        """Park every later ``open()`` (no event, no socket) until :meth:`release_dials`."""
        with self._lock:
            self._holding = True

    def release_dials(self) -> int:
        """Stop holding and complete the parked dials in order; returns how many there were."""
        touched: Touched = {}
        with self._lock:
            self._holding = False
            parked, self._parked = list(self._parked), {}
            for link in parked:
                self._complete_dial(link, touched)
        self._settle(touched)
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
        touched: Touched = {}
        with self._lock:
            account = self._devices.get(jid)
            if account is not None and close_reason in UNLINKING_REASONS:
                self._devices.unlink(account)
            open_sockets = self._sockets.open_of(jid)
            for sock in open_sockets:
                self._close_socket(
                    sock, close_reason, detail or DROP_DETAILS[close_reason], ban, touched
                )
        self._settle(touched)
        return bool(open_sockets)

    def connect_rogue(self, jid: str) -> None:
        """A client outside wamgr logs in as ``jid``; the open socket (if any) is replaced.

        Raises ValueError for an unknown account.
        """
        touched: Touched = {}
        with self._lock:
            if self._devices.get(jid) is None:
                raise ValueError(f"unknown account: {jid!r}")
            self._open_socket(jid, None, touched)
        self._settle(touched)

    def disconnect_rogue(self, jid: str) -> bool:
        """Close the rogue socket of ``jid``; returns whether one was open."""
        with self._lock:
            rogues = [s for s in self._sockets.open_of(jid) if s.link is None]
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
            return self._sockets.max_concurrent(jid)

    def collisions(self, jid: str) -> int:
        """How many times a socket opened for ``jid`` while another one was open."""
        with self._lock:
            return self._sockets.collisions(jid)

    def sockets(self, jid: str) -> list[SocketRecord]:
        """Every socket opened for ``jid``, oldest first (empty for an unknown JID)."""
        with self._lock:
            return self._sockets.records(jid)

    def open_sockets(self, jid: str | None = None) -> int:
        """Sockets logged in right now, for ``jid`` or in total (pairing sockets excluded)."""
        with self._lock:
            return self._sockets.open_count(jid)

    def accounts(self) -> list[str]:
        """JIDs of every account ever paired, in pairing order."""
        with self._lock:
            return self._devices.jids()

    def logouts(self, jid: str) -> int:
        """How many times a link of ``jid`` logged out with ``close(do_logout=True)``."""
        with self._lock:
            account = self._devices.get(jid)
            return account.logouts if account is not None else 0

    def sent_messages(self, jid: str) -> list[tuple[str, str, str]]:
        """Messages sent by links of ``jid`` as ``(to, text, message_id)``, oldest first."""
        with self._lock:
            account = self._devices.get(jid)
            return list(account.sent) if account is not None else []

    def activity(self, jid: str) -> list[tuple[str, str, str]]:
        """What links of ``jid`` showed in chats, oldest first: ``("presence", to, state)``
        ("composing" is typing…) and ``("message", to, message_id)``."""
        with self._lock:
            account = self._devices.get(jid)
            return list(account.activity) if account is not None else []

    def stats(self) -> dict[str, int]:
        """``max_concurrent_sockets``, ``accounts`` and ``open_sockets`` as integers."""
        with self._lock:
            return {
                "max_concurrent_sockets": self._sockets.max_concurrent(),
                "accounts": len(self._devices),
                "open_sockets": self._sockets.open_count(),
            }


def _drop_reason(reason: str) -> CloseReason:
    """The CloseReason a server-side drop reports for ``reason``; ValueError if not allowed."""
    for close_reason in DROP_DETAILS:
        if close_reason.value == reason:
            return close_reason
    allowed = ", ".join(r.value for r in DROP_DETAILS)
    raise ValueError(f"unknown drop reason {reason!r}; allowed: {allowed}")
