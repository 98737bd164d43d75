"""The simulated WhatsApp server's state, and every change a link or a fault makes to it.

:class:`SimCore` holds all of the simulator's state under one lock: the accounts and their
devices (:class:`~wamgr.transport.sim_devices.DeviceBook`), the socket records
(:class:`~wamgr.transport.sim_recorder.SocketRecorder`), pending pairings and held dials. Its
methods run with the lock held and queue the events they cause on the links they touch;
:meth:`SimCore._settle` then saves the devices and delivers those events with the lock
released. :class:`~wamgr.transport.sim.SimWhatsApp` is the public face built on it.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from pathlib import Path

from wamgr.clock import Clock, SystemClock
from wamgr.transport.base import Closed, CloseReason, Connected, LinkEvent, Paired, Qr
from wamgr.transport.sim_devices import DeviceBook, SimAccount
from wamgr.transport.sim_link import LinkState, SimLink, SimNotConnected, Touched, deliver, emit
from wamgr.transport.sim_recorder import SimSocket, SocketRecorder

REPLACED_DETAIL = "stream replaced (440 conflict)"
DEFAULT_DIAL_FAILURE = "dial tcp: connection refused"


class SimCore:
    """The state of one simulated WhatsApp and its transitions (see the module docstring).

    Arguments as :class:`~wamgr.transport.sim.SimWhatsApp` documents them.
    """

    def __init__(
        self,
        auto_pair: bool = False,
        clock: Clock | None = None,
        devices_file: Path | str | None = None,
    ) -> None:
        self._auto_pair = auto_pair
        self._lock = threading.Lock()
        self._closed = False
        path = Path(devices_file) if devices_file is not None else None
        self._devices = DeviceBook(self._lock, path)
        self._sockets = SocketRecorder(clock if clock is not None else SystemClock())
        self._pending: dict[str, SimLink] = {}  # QR code -> pairing link, oldest first
        self._pair_codes: dict[str, str] = {}  # pair code -> QR code of the same link
        self._parked: dict[SimLink, None] = {}  # an ordered set
        self._holding = False
        self._fail_next = 0
        self._fail_detail = DEFAULT_DIAL_FAILURE
        self._attempts: dict[str, int] = {}
        self._attempts_total = 0
        self._qr_ids = itertools.count(1)
        self._message_ids = itertools.count(1)

    # --- link operations (called by SimLink) ------------------------------------------

    def _open(self, link: SimLink) -> None:
        touched: Touched = {}
        with self._lock:
            if link._state is not LinkState.NEW:
                raise RuntimeError(f"{link!r} was already opened or closed; build a new link")
            self._attempts[link.tenant_id] = self._attempts.get(link.tenant_id, 0) + 1
            self._attempts_total += 1
            if self._closed:
                self._finish(link, CloseReason.DIAL_FAILED, "simulator closed", touched)
            elif self._holding:
                link._state = LinkState.PARKED
                self._parked[link] = None
            else:
                self._complete_dial(link, touched)
        self._settle(touched)

    def _close_link(self, link: SimLink, do_logout: bool) -> None:
        touched: Touched = {}
        with self._lock:
            if link._state is LinkState.CLOSED:
                return
            self._parked.pop(link, None)
            if link._state is LinkState.PAIRING and link._qr is not None:
                self._pending.pop(link._qr, None)
            if link._socket is not None:
                account = self._devices.get(link._socket.jid)
                if do_logout and account is not None:
                    self._devices.unlink(account)
                    account.logouts += 1
                self._close_socket(link._socket, CloseReason.REQUESTED, "", None, touched)
            else:
                self._finish(link, CloseReason.REQUESTED, "", touched)
        self._settle(touched)

    def _send_text(self, link: SimLink, to: str, text: str) -> str:
        with self._lock:
            account = self._sending_account(link)
            message_id = self._new_message_id()
            account.sent.append((to, text, message_id))
            account.activity.append(("message", to, message_id))
            return message_id

    def _send_presence(self, link: SimLink, to: str, state: str) -> None:
        with self._lock:
            self._sending_account(link).activity.append(("presence", to, state))

    def _sending_account(self, link: SimLink) -> SimAccount:
        """The account of a connected link (lock held); SimNotConnected if it is not."""
        account = self._devices.get(link._socket.jid) if link._socket is not None else None
        if link._state is not LinkState.CONNECTED or account is None:
            raise SimNotConnected(
                f"cannot send: link of tenant {link.tenant_id!r} (generation "
                f"{link.generation}) is {link._state.value}, not connected"
            )
        return account

    def _pair_code(self, link: SimLink, phone: str) -> str:
        with self._lock:
            if link._qr is None or self._pending.get(link._qr) is not link:
                raise SimNotConnected("the link is not waiting for pairing")
            code = f"{len(self._pair_codes) + 1:04d}-{phone[-4:]:0>4}"
            self._pair_codes[code] = link._qr
            return code

    # --- state changes (lock held) ----------------------------------------------------

    def _complete_dial(self, link: SimLink, touched: Touched) -> None:
        if self._fail_next > 0:
            self._fail_next -= 1
            self._finish(link, CloseReason.DIAL_FAILED, self._fail_detail, touched)
        elif link._jid is None:
            link._state = LinkState.PAIRING
            link._qr = f"2@sim-qr-{next(self._qr_ids):06d}"
            emit(link, Qr(link.generation, link._qr), touched)
            if self._auto_pair:
                self._pair(link, touched)
            else:
                self._pending[link._qr] = link
        else:
            account = self._devices.get(link._jid)
            if account is None or not account.device_linked:
                self._reject(link, link._jid, touched)
            else:
                self._open_socket(link._jid, link, touched)

    def _pair(self, link: SimLink, touched: Touched) -> str:
        jid = self._devices.pair_new().jid
        link._jid = jid
        link._qr = None
        emit(link, Paired(link.generation, jid), touched)
        self._open_socket(jid, link, touched)
        return jid

    def _open_socket(self, jid: str, link: SimLink | None, touched: Touched) -> None:
        """Log a socket in; every older socket of the account is then replaced (440)."""
        sock, older = self._sockets.open(jid, link)
        if link is not None:
            link._state = LinkState.CONNECTED
            link._socket = sock
            emit(link, Connected(link.generation, jid), touched)
        for old in older:
            self._close_socket(old, CloseReason.REPLACED, REPLACED_DETAIL, None, touched)

    def _reject(self, link: SimLink, jid: str, touched: Touched) -> None:
        """The socket opens, the login is refused (401): counted as opened and closed."""
        sock, _ = self._sockets.open(jid, link)
        detail = f"device {jid} is not linked (401 logged out)"
        self._close_socket(sock, CloseReason.LOGGED_OUT, detail, None, touched)

    def _close_socket(
        self,
        sock: SimSocket,
        reason: CloseReason,
        detail: str,
        ban_expires_in_s: float | None,
        touched: Touched,
    ) -> None:
        self._sockets.close(sock, reason)
        if sock.link is not None:
            self._finish(sock.link, reason, detail, touched, ban_expires_in_s)

    def _finish(
        self,
        link: SimLink,
        reason: CloseReason,
        detail: str,
        touched: Touched,
        ban_expires_in_s: float | None = None,
    ) -> None:
        link._state = LinkState.CLOSED
        link._socket = None
        link._qr = None
        emit(link, Closed(link.generation, reason, detail, ban_expires_in_s), touched)

    def _push(
        self, jid: str, message_id: str | None, build: Callable[[int, str], LinkEvent]
    ) -> str:
        """Deliver the event ``build(generation, message_id)`` to the open socket of ``jid``."""
        touched: Touched = {}
        with self._lock:
            open_now = self._sockets.open_of(jid)
            if not open_now:
                raise SimNotConnected(f"no socket is open for {jid}")
            sock = open_now[-1]
            message_id = message_id or self._new_message_id()
            if sock.link is not None:
                emit(sock.link, build(sock.link.generation, message_id), touched)
        self._settle(touched)
        return message_id

    def _new_message_id(self) -> str:
        return f"3EB0{next(self._message_ids):016X}"

    # --- after a change (lock not held) -----------------------------------------------

    def _settle(self, touched: Touched) -> None:
        """Keep the devices (a device is on file before its ``Paired`` is delivered), then
        run the queued events of ``touched``."""
        self._devices.save()
        deliver(self._lock, touched)
