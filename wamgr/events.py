"""What subscribers of a manager receive, and the thread that hands it to them.

Callbacks run on one named dispatcher thread, never on an actor's thread, so a slow or
failing subscriber cannot stall a tenant. A callback that raises is logged and contained.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from loguru import logger

from wamgr.status import TenantState, TenantStatus


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """A tenant changed state; ``old_state`` is None the first time this process saw it."""

    tenant_id: str
    old_state: TenantState | None
    status: TenantStatus


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A text message received by a tenant (each message id is delivered once)."""

    tenant_id: str
    message_id: str
    sender: str
    text: str


ManagerEvent = StatusEvent | InboundMessage
Subscriber = Callable[[ManagerEvent], None]

_STOP = object()


class EventDispatcher:
    """A queue of events and the subscribers they go to."""

    def __init__(self, name: str = "wamgr-events"):
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

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
        """Queue ``event`` for the subscribers; never blocks."""
        if self._subscribers:
            self._queue.put(event)

    def stop(self, timeout: float = 5.0) -> None:
        """Deliver what is queued, then end the thread (waiting at most ``timeout`` seconds)."""
        self._queue.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning("event dispatcher did not finish within {:g} s", timeout)

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is _STOP:
                return
            with self._lock:
                subscribers = list(self._subscribers)
            for callback in subscribers:
                try:
                    callback(event)  # type: ignore[arg-type]
                except Exception:
                    logger.exception("subscriber {!r} failed on {!r}", callback, event)
