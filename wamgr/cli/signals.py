"""SIGTERM and SIGINT stop a long-running command within a time budget, whatever it is doing.

Why not ``signal.signal(SIGTERM, lambda *_: stop.set())`` and ``stop.wait()`` (what ``serve``
did, and what left it running after SIGSTOP, SIGCONT, SIGTERM in 5 of 11 trials, issue #12):

- CPython runs a Python signal handler on the main thread only, between two bytecodes. The
  kernel may deliver a process's signal to any of its threads (right after SIGSTOP and
  SIGCONT it often did); the interpreter then merely flags it, and a main thread asleep in
  an untimed wait never wakes up to run the handler.
- A handler that calls ``Event.set()`` can deadlock: it runs on the main thread, which at
  that moment may hold that very event's lock (not reentrant) inside ``Event.wait()``.

So the interpreter's own C-level handler, which runs at once in whatever thread received
the signal, writes the signal's number to a socket (``signal.set_wakeup_fd``), and a named
watcher thread reads that socket. The Python-level handler does nothing: it is installed
only so that the default action (death, or KeyboardInterrupt) does not happen, and it is
safe to run at any time. The first signal sets an event that the main thread waits for in
timed slices; from then on the watcher holds the graceful stop to its budget: a second
signal, or the budget running out, ends the process at once with a logged error.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType, TracebackType

from loguru import logger

#: The signals that stop a command gracefully.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

#: Seconds of one wait of the main thread for the first signal. The watcher wakes it as soon
#: as a signal arrives; the slice only bounds each wait, so no wake-up can be missed for good.
WAIT_SLICE_S = 1.0

#: Seconds ``__exit__`` waits for the watcher thread to end after a graceful stop.
JOIN_S = 1.0

#: A forced exit's code is 128 + the first signal's number, as a shell reports a process
#: that signal killed: 143 after SIGTERM, 130 after SIGINT. A graceful stop exits 0.
FORCED_EXIT_BASE = 128

#: Written to the socket by ``__exit__`` to wake the watcher; no signal has the number 0.
_FINISHED = 0


def _do_nothing(signum: int, frame: FrameType | None) -> None:
    """The Python-level handler: the signal's number already reached the watcher's socket."""


class StopSignals:
    """Turns SIGTERM and SIGINT into a graceful stop that cannot take longer than a budget.

    Use it as a context manager on the main thread around the whole command::

        with StopSignals(budget_s=30.0) as signals:
            start()
            signals.wait()   # until the first SIGTERM or SIGINT
            stop()           # graceful; must end within budget_s of the signal

    After the first signal, the process ends at once (``exit``, by default ``os._exit``,
    with :data:`FORCED_EXIT_BASE` + the signal's number) when a second signal arrives, or
    when ``budget_s`` pass before the block is left. A block left in time, but with
    non-daemon threads still running (the interpreter would wait for them at exit), stays
    under the budget too. Leaving the block restores the previous handlers.
    """

    def __init__(
        self,
        budget_s: float,
        *,
        exit: Callable[[int], object] = os._exit,
        name: str = "wamgr-signals",
    ):
        self.budget_s = budget_s
        self._exit = exit
        self._requested = threading.Event()
        self._finished = threading.Event()
        self._first: signal.Signals | None = None
        self._reader, self._writer = socket.socketpair()
        for sock in (self._reader, self._writer):
            sock.setblocking(False)
        self._pending: list[int] = []
        self._previous_handlers: dict[signal.Signals, object] = {}
        self._previous_fd = -1
        self._thread = threading.Thread(target=self._watch, name=name, daemon=True)

    def __enter__(self) -> StopSignals:
        for signum in STOP_SIGNALS:
            self._previous_handlers[signum] = signal.signal(signum, _do_nothing)
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        signal.set_wakeup_fd(self._previous_fd)
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._finished.set()
        with contextlib.suppress(OSError):  # a buffer full of signal numbers wakes it anyway
            self._writer.send(bytes([_FINISHED]))
        self._thread.join(JOIN_S)
        if not self._thread.is_alive():  # else it still guards the budget, and closes them
            self._close()

    @property
    def requested(self) -> bool:
        """Whether a stop signal has arrived."""
        return self._requested.is_set()

    def wait(self, timeout: float | None = None) -> signal.Signals | None:
        """Block until the first stop signal has arrived and return it; None if ``timeout``
        seconds pass first (None: no limit)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:  # in slices: no wake-up that never comes can keep this thread asleep
            left = WAIT_SLICE_S if deadline is None else deadline - time.monotonic()
            if self._requested.wait(max(0.0, min(left, WAIT_SLICE_S))):
                return self._first
            if deadline is not None and time.monotonic() >= deadline:
                return None

    # --- the watcher thread ----------------------------------------------------------------

    def _watch(self) -> None:
        try:
            first = self._next(deadline=None)
            if first in (None, _FINISHED):
                return
            self._first = signal.Signals(first)
            self._requested.set()
            deadline = time.monotonic() + self.budget_s
            got = self._next(deadline)
            if got is None:
                self._force(f"the graceful stop did not end within {self.budget_s:g} s")
            elif got != _FINISHED:
                self._force(f"{signal.Signals(got).name} during the graceful stop")
            else:
                self._await_threads(deadline)
        finally:
            if self._finished.is_set():
                self._close()

    def _next(self, deadline: float | None) -> int | None:
        """The next number on the socket (a signal's, or :data:`_FINISHED`), or None once
        ``deadline`` has passed."""
        while not self._pending:
            left = WAIT_SLICE_S if deadline is None else deadline - time.monotonic()
            if left <= 0:
                return None
            readable, _, _ = select.select([self._reader], [], [], min(left, WAIT_SLICE_S))
            if readable:
                try:
                    self._pending.extend(self._reader.recv(64))
                except BlockingIOError:  # woken without data: wait again
                    continue
        return self._pending.pop(0)

    def _await_threads(self, deadline: float) -> None:
        """The block was left in time; the interpreter now waits for its non-daemon threads
        before the process can exit, so they too must end by ``deadline``."""
        for thread in _non_daemon_threads():
            thread.join(max(0.0, deadline - time.monotonic()))
        left = _non_daemon_threads()
        if left:
            names = ", ".join(thread.name for thread in left)
            self._force(f"threads still running {self.budget_s:g} s after the signal: {names}")

    def _force(self, why: str) -> None:
        assert self._first is not None
        code = FORCED_EXIT_BASE + self._first
        logger.error("{} ({}): exiting at once with code {}", why, self._first.name, code)
        sys.stderr.flush()
        self._exit(code)

    def _close(self) -> None:
        self._reader.close()
        self._writer.close()


def _non_daemon_threads() -> list[threading.Thread]:
    """The threads besides the main one that the interpreter waits for before it exits."""
    main, me = threading.main_thread(), threading.current_thread()
    return [t for t in threading.enumerate() if t not in (main, me) and not t.daemon]
