"""The gate in front of neonize's Go core: no Go map is ever written while it is read.

neonize 0.5 keeps every client in three global Go maps (``clients``, ``eventChannel``,
``StopSignal``) with no lock. Only ``Neonize`` (what ``connect()`` runs) and ``Stop`` write
them; every other export reads ``clients[id]``. A write that overlaps any read or write is a
Go ``fatal error`` that kills the whole process (measured: 4 crashes in 10 runs of 40 clients
starting and stopping at once). Concurrent *reads* are safe in Go. So:

- :meth:`GoGate.exclusive` for map writers (``Stop``; the start of ``Neonize``),
- :meth:`GoGate.shared` for every other call (send, pair code, logout, is_connected...),
  which may run together,
- a waiting writer blocks new readers, so a stream of sends cannot starve a connect.

``Neonize`` blocks for the client's whole life, so its exclusive hold is a :class:`StartHold`:
taken before ``connect()``, released exactly once, from whichever thread sees first that
the Go side is past its map writes and reads (``connect()`` returned, the QR callback ran,
or the code-0 ``Device`` event arrived). That hold lasts through the dial (≈1 s, up to 60 s
when the network swallows packets), so dials in one process are serial; the host's
watchdog ends a process whose gate stays shut far longer (see ``host.py``).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

#: False makes every call exclusive (the simplest, slowest correct choice); True lets
#: readers of the Go maps run together, which Go allows.
SHARED_READS = True


class GoGate:
    """A readers-writer lock whose exclusive side can be released from another thread."""

    def __init__(self, shared_reads: bool = SHARED_READS):
        self._shared_reads = shared_reads
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0
        self._exclusive_since: float | None = None
        self.exclusive_count = 0

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        """Hold the gate for a call that only reads the Go maps."""
        if not self._shared_reads:
            with self.exclusive():
                yield
            return
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the gate alone, for a call that writes the Go maps."""
        self.acquire_exclusive()
        try:
            yield
        finally:
            self.release_exclusive()

    def acquire_exclusive(self) -> None:
        """Wait until no one else holds the gate, then hold it alone."""
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writer or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = True
            self._exclusive_since = time.monotonic()
            self.exclusive_count += 1

    def release_exclusive(self) -> None:
        """Give the exclusive hold up; any thread may call it (see :class:`StartHold`)."""
        with self._cond:
            if not self._writer:
                raise RuntimeError("the Go gate is not held exclusively")
            self._writer = False
            self._exclusive_since = None
            self._cond.notify_all()

    def exclusive_held_for(self) -> float | None:
        """Seconds the current exclusive hold has lasted, or None when it is not held."""
        since = self._exclusive_since
        return None if since is None else time.monotonic() - since


class StartHold:
    """One link's exclusive hold across the start of ``Neonize``; released exactly once."""

    def __init__(self, gate: GoGate):
        self._gate = gate
        self._lock = threading.Lock()
        self._held = False

    @property
    def held(self) -> bool:
        """Whether this hold has the gate now."""
        return self._held

    def take(self) -> None:
        """Wait for the gate and hold it (on the thread that will call Go next)."""
        self._gate.acquire_exclusive()
        with self._lock:
            self._held = True

    def release(self) -> None:
        """Let the gate go if this hold has it; any thread may call it, any number of times."""
        with self._lock:
            if not self._held:
                return
            self._held = False
        self._gate.release_exclusive()
