"""One timer thread with a heap of due times (after psycopg_pool's ``sched.py``).

``schedule(delay, action)`` runs ``action`` on the scheduler's thread once ``delay`` seconds
of the injected clock have passed. Actions must be quick and must not block: in wamgr they
only ``tell`` an actor. A failing action is logged and the loop goes on.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from loguru import logger

from wamgr.clock import Clock, SystemClock


@dataclass(order=True)
class _Task:
    due: float
    seq: int
    action: Callable[[], None] | None = field(compare=False)


class Scheduler:
    """A heap of ``(due, action)`` served by one named thread."""

    def __init__(self, clock: Clock | None = None, name: str = "wamgr-scheduler"):
        self._clock = clock or SystemClock()
        self._heap: list[_Task] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def schedule(self, delay_s: float, action: Callable[[], None]) -> _Task:
        """Run ``action`` after ``delay_s`` seconds; returns a handle for :meth:`cancel`."""
        task = _Task(self._clock.monotonic() + max(0.0, delay_s), next(self._seq), action)
        with self._lock:
            if self._stopping:
                raise RuntimeError("the scheduler is stopped")
            heapq.heappush(self._heap, task)
            front = self._heap[0] is task
        if front:
            self._wakeup.set()
        return task

    def cancel(self, task: _Task) -> None:
        """Make ``task`` do nothing when it comes due (it is dropped from the heap then)."""
        task.action = None

    def pending(self) -> int:
        """How many tasks wait (cancelled ones included until they come due)."""
        with self._lock:
            return len(self._heap)

    def stop(self, timeout: float = 5.0) -> None:
        """Drop every pending task and end the thread, waiting at most ``timeout`` seconds."""
        with self._lock:
            self._stopping = True
            self._heap.clear()
        self._wakeup.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning("scheduler thread did not end within {:g} s", timeout)

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._stopping:
                    return
                now = self._clock.monotonic()
                due: list[_Task] = []
                while self._heap and self._heap[0].due <= now:
                    due.append(heapq.heappop(self._heap))
                deadline = self._heap[0].due if self._heap else None
                self._wakeup.clear()
            for task in due:
                action = task.action
                if action is None:
                    continue
                try:
                    action()
                except Exception:
                    logger.exception("scheduled action {!r} failed", action)
            if not due:
                self._clock.wait_until(self._wakeup, deadline)
