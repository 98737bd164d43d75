"""Repeated warnings, rate-limited: the first at once, then at most one per interval.

A failure that repeats every second while the database is down (a listening connection that
cannot be opened, a renewal that cannot be sent) would otherwise write the same line dozens
of times a minute and bury everything else. :class:`RateLimitedLog` writes the first
occurrence of each message at once, holds back the repeats for ``interval_s``, and writes
the next one with how many were held back; :meth:`RateLimitedLog.recovered` says once that
the trouble is over.

    warnings = RateLimitedLog(interval_s=30.0)
    warnings.warning(logger, "listener: {}; retrying", detail)   # from a loop that repeats
    warnings.recovered(logger, "listener: listening again")
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loguru import Logger

#: Seconds between two lines of one repeated warning, unless told otherwise.
DEFAULT_INTERVAL_S = 30.0


@dataclass(slots=True)
class _Window:
    """One message's state: when it was last written, and the repeats held back since."""

    written_at: float
    held_back: int = 0


class RateLimitedLog:
    """Writes each message (by its format string) at most once per ``interval_s`` seconds.

    Thread-safe. ``clock`` gives monotonic seconds (tests pass a stepped one).
    """

    def __init__(
        self,
        interval_s: float = DEFAULT_INTERVAL_S,
        *,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, _Window] = {}

    def warning(self, log: Logger, message: str, *args: Any, **kwargs: Any) -> bool:
        """``log.warning(message, *args, **kwargs)`` unless this message was written less than
        ``interval_s`` ago; returns whether it was written. A line written after held-back
        repeats ends with how many there were."""
        return self._write(log, "WARNING", message, args, kwargs)

    def error(self, log: Logger, message: str, *args: Any, **kwargs: Any) -> bool:
        """As :meth:`warning`, at level ERROR."""
        return self._write(log, "ERROR", message, args, kwargs)

    def _write(
        self, log: Logger, level: str, message: str, args: tuple, kwargs: dict[str, Any]
    ) -> bool:
        now = self._clock()
        with self._lock:
            window = self._windows.get(message)
            if window is not None and now - window.written_at < self.interval_s:
                window.held_back += 1
                return False
            held_back = window.held_back if window is not None else 0
            self._windows[message] = _Window(now)
        suffix = ""
        if held_back:
            suffix = f" ({held_back} more like it in the last {self.interval_s:g} s)"
        # depth 2: the line is attributed to whoever called warning() or error()
        log.opt(depth=2).log(level, message + suffix, *args, **kwargs)
        return True

    def recovered(self, log: Logger, message: str, *args: Any, **kwargs: Any) -> bool:
        """Write ``message`` at INFO if any warning was written since the last recovery (and
        forget them all, so the next failure is written at once); returns whether it did."""
        with self._lock:
            if not self._windows:
                return False
            self._windows.clear()
        log.opt(depth=1).info(message, *args, **kwargs)
        return True
