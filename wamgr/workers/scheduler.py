"""One timer worker with a heap of due times (after psycopg_pool's ``sched.py``).

``schedule(delay, action)`` runs ``action`` on the scheduler's thread once ``delay`` seconds
of the injected clock have passed. Actions must be quick and must not block: in wamgr they
only ``tell`` an actor. A failing action is logged and the loop goes on. The thread wakes
only when a new task goes to the front of the heap, when the front one comes due, or (on a
virtual clock) when a test advances time.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from loguru import logger

from wamgr.clock import Clock, SystemClock
from wamgr.workers.base import AT_ONCE, Worker, WorkerStopped


@dataclass(order=True)
class _Task:
    due: float
    seq: int
    action: Callable[[], None] | None = field(compare=False)


class Scheduler(Worker):
    """A heap of ``(due, action)`` served by one named worker; ``start()`` it to run."""

    what = "scheduler pass"

    def __init__(self, clock: Clock | None = None, name: str = "wamgr-scheduler"):
        self._clock = clock or SystemClock()
        super().__init__(name, clock=self._clock)
        self._heap: list[_Task] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()

    def schedule(self, delay_s: float, action: Callable[[], None]) -> _Task:
        """Run ``action`` after ``delay_s`` seconds; returns a handle for :meth:`cancel`.

        Tasks scheduled before :meth:`start` wait for it; after :meth:`stop`, WorkerStopped.
        """
        task = _Task(self._clock.monotonic() + max(0.0, delay_s), next(self._seq), action)
        with self._lock:
            if self.stopping:
                raise WorkerStopped(self.name)
            heapq.heappush(self._heap, task)
            front = self._heap[0] is task
        if front:
            self.wake()
        return task

    def cancel(self, task: _Task) -> None:
        """Make ``task`` do nothing when it comes due (it is dropped from the heap then)."""
        task.action = None

    def pending(self) -> int:
        """How many tasks wait (cancelled ones included until they come due)."""
        with self._lock:
            return len(self._heap)

    def iterate(self) -> float | None:
        """Run the tasks that are due; returns when the next one is (None: none is waiting)."""
        with self._lock:
            now = self._clock.monotonic()
            due: list[_Task] = []
            while self._heap and self._heap[0].due <= now:
                due.append(heapq.heappop(self._heap))
            next_due = self._heap[0].due if self._heap else None
        if not due:
            return next_due
        for task in due:
            action = task.action
            if action is None or self.stopping:
                continue
            try:
                action()
            except Exception:
                logger.exception("scheduled action {!r} failed", action)
        return AT_ONCE  # look again: more may have come due while these ran

    def on_stopping(self) -> None:
        """Drop every pending task: nothing runs after stop."""
        with self._lock:
            self._heap.clear()
