"""Results from other threads handed to the loop in batches: one wake-up per batch.

``loop.call_soon_threadsafe`` wakes the loop once per call. While hundreds of threads are
busy (a storm of connects), a wake-up per result makes the loop re-take the GIL hundreds
of times a second and fall behind its own timers. A :class:`Batcher` wakes it once, and
hands it everything that arrived until then in one go.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Batcher(Generic[T]):
    """Items put from any thread, passed in order to ``handle`` on ``loop``'s thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, handle: Callable[[T], None]):
        self._loop = loop
        self._handle = handle
        self._lock = threading.Lock()
        self._items: list[T] = []

    def put(self, item: T) -> None:
        """Queue ``item``; wakes the loop unless a wake-up is pending already. Dropped if the
        loop is closed."""
        with self._lock:
            self._items.append(item)
            if len(self._items) > 1:
                return  # the wake-up that the first item asked for takes this one too
        with contextlib.suppress(RuntimeError):  # a closed loop: the application has gone
            self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._lock:
            items, self._items = self._items, []
        for item in items:
            self._handle(item)
