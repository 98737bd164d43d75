"""The undecryptable-message counter: when a link's keys look corrupted.

A message the link cannot decrypt now and then is normal (a sender's session reset); many
within a short window mean the device's keys are corrupted, and the tenant closes the link
with ``CORRUPTED_KEYS`` for the policy to decide (``failed``, or re-pairing when
``clear_auth_on_corruption`` is set). The counter is per link: it starts empty whenever a new
link opens.
"""

from __future__ import annotations

from collections import deque

from loguru import logger


class UndecryptableCounter:
    """Counts undecryptable messages in a sliding window of ``window_s`` seconds."""

    __slots__ = ("_tenant_id", "_times", "limit", "window_s")

    def __init__(self, tenant_id: str, limit: int, window_s: float):
        self._tenant_id = tenant_id
        self.limit = limit
        self.window_s = window_s
        self._times: deque[float] | None = None  # made at the first one: most links see none

    def too_many(self, now: float) -> bool:
        """Count one message seen at monotonic time ``now``; True (logged, and counting starts
        afresh) if more than ``limit`` fell within the window: the keys look corrupted."""
        if self._times is None:
            self._times = deque()
        times = self._times
        times.append(now)
        while times and times[0] < now - self.window_s:
            times.popleft()
        if len(times) <= self.limit:
            return False
        logger.bind(tenant=self._tenant_id).error(
            "{} undecryptable messages within {:g} s: the keys look corrupted",
            len(times),
            self.window_s,
        )
        times.clear()
        return True

    def clear(self) -> None:
        """Forget every message counted (a new link opens)."""
        self._times = None
