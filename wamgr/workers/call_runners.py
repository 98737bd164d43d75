"""Call runners: the few threads that run the calls other instances forward here.

The command listener takes the calls addressed to this instance and hands them over with
:meth:`CallRunners.submit`; one of :data:`RUNNERS` named workers runs each (``serve(call)``
asks the tenant's actor and writes the reply), so a slow call (a send on a slow link) does
not hold up the calls for other tenants, nor the listener. A call still queued at stop is
not run: its asker times out naming this instance.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

from loguru import logger

from wamgr.errors import WamgrError
from wamgr.store.calls import PendingCall
from wamgr.workers.base import Worker

#: How many calls run at once.
RUNNERS = 4


class _Runner(Worker):
    """One thread that runs queued calls until the queue is empty, then waits for a wake."""

    what = "forwarded call"

    def __init__(
        self,
        take: Callable[[], PendingCall | None],
        serve: Callable[[PendingCall], None],
        name: str,
    ):
        super().__init__(name)
        self._take = take
        self._serve = serve

    def iterate(self) -> None:
        """Run every call queued, then wait until woken."""
        while not self.stopping and (call := self._take()) is not None:
            log = logger.bind(tenant=call.tenant_id)
            try:
                self._serve(call)
            except WamgrError as exc:
                log.warning("forwarded {} from {}: {}", call.kind, call.sender, exc)
            except Exception:
                log.exception("forwarded {} from {} failed", call.kind, call.sender)
        return None


class CallRunners:
    """A queue of forwarded calls and the :data:`RUNNERS` workers that run them."""

    def __init__(self, serve: Callable[[PendingCall], None], runners: int = RUNNERS):
        self._queue: collections.deque[PendingCall] = collections.deque()
        self._lock = threading.Lock()
        self._runners = [
            _Runner(self._take, serve, f"wamgr-calls-{n}") for n in range(max(1, runners))
        ]

    def start(self) -> None:
        """Start the workers."""
        for runner in self._runners:
            runner.start()

    def submit(self, calls: list[PendingCall]) -> None:
        """Queue ``calls`` (oldest first) and wake the workers. Never blocks."""
        if not calls:
            return
        with self._lock:
            self._queue.extend(calls)
        for runner in self._runners:  # a busy one would leave the call waiting
            runner.wake()

    def stop(self, timeout: float) -> bool:
        """Stop the workers (a call under way finishes) within ``timeout`` seconds in all."""
        end = time.monotonic() + timeout
        return all([runner.stop(max(0.0, end - time.monotonic())) for runner in self._runners])

    def _take(self) -> PendingCall | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None
