"""Clocks: the real one, and a virtual one that tests step by hand.

Everything in wamgr that measures time (backoff delays, uptime, lease deadlines, the socket
log of the simulator) asks a :class:`Clock`, never :mod:`time` directly, so a test can move
time forward by an hour in a microsecond.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """A source of time, and a way to wait on it."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for delays and deadlines)."""

    def time(self) -> float:
        """Seconds since the epoch (for timestamps shown to people)."""

    def wait_until(self, event: threading.Event, deadline: float | None) -> bool:
        """Wait until ``event`` is set or this clock's ``monotonic()`` reaches ``deadline``.

        Returns whether the event was set. May return early; callers re-check their state.
        """


def utc_from_timestamp(seconds: float) -> datetime:
    """An aware UTC datetime for ``seconds`` since the epoch."""
    return datetime.fromtimestamp(seconds, tz=UTC)


class SystemClock:
    """The machine's clocks."""

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    def time(self) -> float:
        """``time.time()``."""
        return time.time()

    def wait_until(self, event: threading.Event, deadline: float | None) -> bool:
        """``event.wait`` until the deadline."""
        if deadline is None:
            return event.wait()
        return event.wait(max(0.0, deadline - time.monotonic()))


class VirtualClock:
    """A clock that moves only when :meth:`advance` is called.

    Waiters on this clock are woken on every advance, so a scheduler waiting for a due time
    re-checks it at once; nothing sleeps in real time waiting for virtual time.
    """

    def __init__(self, start_monotonic: float = 1_000.0, start_time: float = 1_767_225_600.0):
        self._lock = threading.Lock()
        self._offset = 0.0
        self._start_monotonic = start_monotonic
        self._start_time = start_time
        self._waiters: set[threading.Event] = set()

    def monotonic(self) -> float:
        """Virtual monotonic seconds."""
        with self._lock:
            return self._start_monotonic + self._offset

    def time(self) -> float:
        """Virtual epoch seconds (starts at 2026-01-01 00:00 UTC)."""
        with self._lock:
            return self._start_time + self._offset

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and wake everything waiting on this clock."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go back: advance({seconds})")
        with self._lock:
            self._offset += seconds
            waiters = list(self._waiters)
        for event in waiters:
            event.set()

    def wait_until(self, event: threading.Event, deadline: float | None) -> bool:
        """Wait for ``event``; any :meth:`advance` also ends the wait (callers re-check)."""
        with self._lock:
            if deadline is not None and self._start_monotonic + self._offset >= deadline:
                return event.is_set()
            self._waiters.add(event)
        try:
            return event.wait()
        finally:
            with self._lock:
                self._waiters.discard(event)
