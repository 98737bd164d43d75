"""The worker that hands a manager's events to its subscribers.

Callbacks run on one named dispatcher thread, never on an actor's thread, so a slow or
failing subscriber cannot stall a tenant. A callback that raises is logged and contained.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from loguru import logger

from wamgr.events import ManagerEvent, Subscriber
from wamgr.workers.base import Worker


class EventDispatcher(Worker):
    """A queue of events and the subscribers they go to; ``start()`` it to deliver."""

    what = "event delivery"

    def __init__(self, name: str = "wamgr-events"):
        super().__init__(name)
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[ManagerEvent] = queue.SimpleQueue()

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Deliver every later event to ``callback``; returns a function that unsubscribes."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def publish(self, event: ManagerEvent) -> None:
        """Queue ``event`` for the subscribers; never blocks.

        Events published once the dispatcher has stopped are dropped.
        """
        if self._subscribers:
            self._queue.put(event)
            self.wake()

    def iterate(self) -> None:
        """Deliver everything queued, in order; then wait to be woken by :meth:`publish`."""
        self._deliver_queued()

    def on_stop(self) -> None:
        """Deliver what was queued before the stop."""
        self._deliver_queued()

    def _deliver_queued(self) -> None:
        while True:
            try:
                event = self._queue.get_nowait()
            except queue.Empty:
                return
            with self._lock:
                subscribers = list(self._subscribers)
            for callback in subscribers:
                try:
                    callback(event)
                except Exception:
                    logger.exception("subscriber {!r} failed on {!r}", callback, event)
