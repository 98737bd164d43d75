"""What the simulator records of every socket: when it opened and closed, per account.

:class:`SocketRecorder` is the proof the tests check: :meth:`~SocketRecorder.max_concurrent`
is the most sockets one account ever had open at one moment (a second socket for an account
counts as open beside the first until the first is replaced), and it must stay 1.

It holds no lock: the simulator's lock guards it, as it guards everything the simulator has.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from wamgr.clock import Clock
from wamgr.transport.base import CloseReason

if TYPE_CHECKING:
    from wamgr.transport.sim_link import SimLink


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


class SimSocket:
    """A socket logged in to an account (mutable; :class:`SocketRecord` is its snapshot).

    ``link`` is the wamgr link it belongs to, or None for a rogue client's socket.
    """

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
        """A frozen copy of this socket's life so far."""
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
        self.all: list[SimSocket] = []
        self.open: list[SimSocket] = []
        self.max_concurrent = 0
        self.collisions = 0


class SocketRecorder:
    """Opens and closes :class:`SimSocket` records per account and counts what overlapped.

    Times come from ``clock``. Not thread-safe on its own: the simulator's lock guards it.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._logs: dict[str, _SocketLog] = {}
        self._socket_ids = itertools.count(1)
        self._open_count = 0
        self._max_concurrent = 0

    def open(self, jid: str, link: SimLink | None) -> tuple[SimSocket, list[SimSocket]]:
        """Record a socket opening for ``jid``; returns it and the sockets that were already
        open for ``jid`` (oldest first), which the caller replaces."""
        log = self._logs.setdefault(jid, _SocketLog())
        older = list(log.open)
        sock = SimSocket(next(self._socket_ids), jid, link, self._clock.monotonic())
        log.all.append(sock)
        log.open.append(sock)
        if len(log.open) > 1:
            log.collisions += 1
        log.max_concurrent = max(log.max_concurrent, len(log.open))
        self._max_concurrent = max(self._max_concurrent, log.max_concurrent)
        self._open_count += 1
        return sock, older

    def close(self, sock: SimSocket, reason: CloseReason) -> None:
        """Record that the open socket ``sock`` closed for ``reason``."""
        sock.closed_at = self._clock.monotonic()
        sock.close_reason = reason
        self._logs[sock.jid].open.remove(sock)
        self._open_count -= 1

    def open_of(self, jid: str) -> list[SimSocket]:
        """The sockets open for ``jid`` now, oldest first."""
        log = self._logs.get(jid)
        return list(log.open) if log is not None else []

    def open_count(self, jid: str | None = None) -> int:
        """How many sockets are open now, for ``jid`` or in total."""
        if jid is None:
            return self._open_count
        log = self._logs.get(jid)
        return len(log.open) if log is not None else 0

    def max_concurrent(self, jid: str | None = None) -> int:
        """Most sockets ever open at one moment for ``jid`` (or for any one account)."""
        if jid is None:
            return self._max_concurrent
        log = self._logs.get(jid)
        return log.max_concurrent if log is not None else 0

    def collisions(self, jid: str) -> int:
        """How many times a socket opened for ``jid`` while another one was open."""
        log = self._logs.get(jid)
        return log.collisions if log is not None else 0

    def records(self, jid: str) -> list[SocketRecord]:
        """Every socket opened for ``jid``, oldest first (empty for an unknown JID)."""
        log = self._logs.get(jid)
        return [s.record() for s in log.all] if log is not None else []
