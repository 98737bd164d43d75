"""Worker: the one kind of background thread wamgr runs (after psycopg_pool's workers).

Every thread wamgr owns outside its actors is a :class:`Worker`: named ``wamgr-...``,
started by an explicit :meth:`Worker.start` (a constructor never starts a thread), woken by
an Event (:meth:`Worker.wake`), and ended by :meth:`Worker.stop` within a timeout, which says
whether the thread ended. A subclass writes one iteration, :meth:`Worker.iterate`, which
says when the next one is due; an iteration that fails is logged and the loop goes on.

The loop, on the worker's thread::

    on_start()
    until stopped:
        clear the wake event; due = iterate()   (if it raised: due = on_failure(exc))
        wait until woken, stopped, or the clock reaches `due` (None: no limit)
    on_stop()   (the last word: a final flush, a final delivery)

Threads are daemons, as psycopg_pool's are. A worker holds nothing that an abrupt end at
interpreter exit could lose for good: leases and outbox claims expire, commands and claims
are looked for again by the next instance. A non-daemon worker that an embedding program
forgot to stop would instead hang its exit for ever, and before any ``atexit`` handler
could stop it (Python joins non-daemon threads first). Tests prove that every worker ends
on ``stop()`` by listing the ``wamgr-`` threads still alive, not by the interpreter's exit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from loguru import logger

from wamgr.clock import Clock, SystemClock
from wamgr.errors import WamgrError

#: Every worker thread's name starts with this, so a leftover thread is easy to attribute.
NAME_PREFIX = "wamgr-"
#: Seconds a worker waits after a failed iteration unless its :meth:`on_failure` says else.
FAILURE_WAIT_S = 1.0
#: A due time that has always passed: :meth:`Worker.iterate` returns it to run again at once.
AT_ONCE = float("-inf")


class WorkerStopped(RuntimeError):
    """Work was handed to a worker that is stopped (or being stopped)."""

    def __init__(self, name: str):
        self.name = name
        super().__init__(f"{name} is stopped")


class Worker:
    """A named daemon thread that runs :meth:`iterate` until :meth:`stop`.

    ``clock`` measures the waits between iterations (on a virtual clock, the next iteration
    runs once a test advances it to the due time). State the base class owns is prefixed
    ``_worker_`` so subclasses cannot collide with it.
    """

    #: What one iteration is called in the log ("claim pass", "sweep", ...).
    what = "iteration"

    def __init__(self, name: str, *, clock: Clock | None = None):
        if not name.startswith(NAME_PREFIX):
            raise ValueError(f"a worker's name starts with {NAME_PREFIX!r}: {name!r}")
        self._worker_name = name
        self._worker_clock: Clock = clock or SystemClock()
        self._worker_lock = threading.Lock()
        self._worker_stop = threading.Event()
        self._worker_wake = threading.Event()
        # What the clock waits on: set by wake/stop, and (on a virtual clock) by every advance,
        # after which the loop re-checks whether it was woken or the due time has come.
        self._worker_tick = threading.Event()
        self._worker_thread: threading.Thread | None = None

    # --- the life cycle -----------------------------------------------------------------

    @property
    def name(self) -> str:
        """The thread's name."""
        return self._worker_name

    def start(self) -> None:
        """Start the thread. A worker starts once; starting a stopped one raises WorkerStopped."""
        with self._worker_lock:
            if self._worker_stop.is_set():
                raise WorkerStopped(self._worker_name)
            if self._worker_thread is not None:
                raise RuntimeError(f"{self._worker_name} is started already")
            self._worker_thread = threading.Thread(
                target=self._worker_loop, name=self._worker_name, daemon=True
            )
            self._worker_thread.start()

    def wake(self) -> None:
        """Run the next iteration now instead of at the end of the current wait. Never blocks.

        A wake already pending is left as it is (an iteration that starts after it sees
        whatever the caller did before): a stop's thousands of status changes each wake the
        same few workers, and setting an Event is a lock and a notify each time."""
        if self._worker_wake.is_set():
            return
        self._worker_wake.set()
        self._worker_tick.set()

    def stop(self, timeout: float) -> bool:
        """Ask the thread to end and wait at most ``timeout`` seconds for it.

        Returns whether the thread has ended (True also when it never started). An iteration
        under way finishes first; :meth:`on_stop` runs after it. Safe to call again (it waits
        again), before :meth:`start` (the worker can then no longer start), and from the
        worker's own thread (it does not wait then, and returns False).
        """
        with self._worker_lock:
            first = not self._worker_stop.is_set()
            self._worker_stop.set()
            thread = self._worker_thread
        self._worker_wake.set()
        self._worker_tick.set()
        if first and thread is not None:
            self.on_stopping()
        if thread is None:
            return True
        if thread is threading.current_thread():
            return False
        thread.join(max(0.0, timeout))
        if thread.is_alive():
            logger.warning("{} did not end within {:g} s", self._worker_name, timeout)
            return False
        return True

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called (a long iteration should check it and end early)."""
        return self._worker_stop.is_set()

    @property
    def alive(self) -> bool:
        """Whether the thread is running."""
        thread = self._worker_thread
        return thread is not None and thread.is_alive()

    def pause(self, seconds: float) -> bool:
        """Wait ``seconds`` (real time) inside an iteration; True if stopped meanwhile.

        Unlike the wait between iterations, :meth:`wake` does not end this one.
        """
        return self._worker_stop.wait(seconds)

    # --- hooks for subclasses -----------------------------------------------------------

    def iterate(self) -> float | None:
        """One iteration. Returns when the next one is due, as a time on the worker's clock
        (see :meth:`after`; :data:`AT_ONCE` for at once), or None for not until :meth:`wake`.

        A due time, not a delay: a virtual clock advanced while the iteration ran is then
        seen at once instead of being missed.
        """
        raise NotImplementedError

    def after(self, seconds: float) -> float:
        """The time on the worker's clock ``seconds`` from now (a due time for :meth:`iterate`)."""
        return self._worker_clock.monotonic() + seconds

    def on_start(self) -> None:
        """Runs on the thread before the first iteration (a failure is logged)."""

    def on_failure(self, exc: Exception) -> float | None:
        """An iteration raised ``exc``: log it, and return when the next one is due.

        wamgr's own errors (a database outage, say) are one-line warnings; anything else is
        a bug and gets its traceback.
        """
        if isinstance(exc, WamgrError):
            logger.warning("{} failed: {}", self.what, exc.format_message())
        else:
            logger.opt(exception=exc).error("{} failed", self.what)
        return self.after(FAILURE_WAIT_S)

    def on_stopping(self) -> None:
        """Runs once on the thread that calls :meth:`stop`, after the stop is flagged and the
        wake event set: unblock a wait that is not on the wake event (a socket, say)."""

    def on_stop(self) -> None:
        """Runs on the thread after the last iteration (a failure is logged)."""

    # --- internals ----------------------------------------------------------------------

    def _worker_loop(self) -> None:
        self._worker_hook(self.on_start, "start")
        try:
            while not self._worker_stop.is_set():
                self._worker_wake.clear()
                try:
                    due = self.iterate()
                except Exception as exc:
                    due = self._worker_failed(exc)
                if self._worker_stop.is_set():
                    break
                self._worker_wait(due)
        finally:
            self._worker_hook(self.on_stop, "stop")

    def _worker_wait(self, due: float | None) -> None:
        """Wait until woken (or stopped), or until the clock reaches ``due``."""
        clock = self._worker_clock
        while not self._worker_wake.is_set():
            if due is not None and clock.monotonic() >= due:
                return
            clock.wait_until(self._worker_tick, due)
            self._worker_tick.clear()

    def _worker_failed(self, exc: Exception) -> float | None:
        try:
            return self.on_failure(exc)
        except Exception:
            logger.exception("{}: on_failure failed", self._worker_name)
            return self.after(FAILURE_WAIT_S)

    def _worker_hook(self, hook: Callable[[], None], phase: str) -> None:
        try:
            hook()
        except Exception:
            logger.exception("{} failed at {}", self._worker_name, phase)
