"""ThreadStarter: starts threads from a few workers at once, so nobody waits for each in turn.

``Thread.start()`` returns only once the new thread has run, which takes one trip through the
OS scheduler: microseconds on an idle host, milliseconds on a loaded one. A restore that
starts 10,000 tenant actors one after another on the registry's thread waits for 10,000 such
trips in a row. The registry instead hands each start to a ThreadStarter and goes on: its
``workers`` start them in parallel, round robin. A message sent to an actor whose thread has
not run yet waits in its inbox, as any message does.

Every start handed over is done: :meth:`ThreadStarter.stop` lets each worker finish its
queue (an actor left unstarted could never be stopped), and a start handed over after
``stop`` runs on the caller's thread.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable

from loguru import logger

from wamgr.workers.base import Worker

#: Workers that start threads at once.
STARTERS = 8


class _Starter(Worker):
    """One worker that runs the starts queued for it, in order."""

    what = "thread start"

    def __init__(self, name: str):
        super().__init__(name)
        self.starts: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()

    def iterate(self) -> None:
        """Run every queued start; then wait to be woken."""
        self.drain()

    def on_stop(self) -> None:
        """Run what is still queued: no start is dropped."""
        self.drain()

    def drain(self) -> None:
        """Run the queued starts; a failing one is logged and the rest still run."""
        while True:
            try:
                start = self.starts.get_nowait()
            except queue.Empty:
                return
            try:
                start()
            except Exception:
                logger.exception("starting a thread failed")


class ThreadStarter:
    """Starts threads (``start()`` callables) on ``workers`` named workers, round robin."""

    def __init__(self, workers: int = STARTERS, name: str = "wamgr-thread-starter"):
        self._workers = [_Starter(f"{name}-{i}") for i in range(max(1, workers))]
        self._next = itertools.cycle(self._workers)
        self._lock = threading.Lock()
        self._stopped = False

    def start(self) -> None:
        """Start the workers."""
        for worker in self._workers:
            worker.start()

    def submit(self, start: Callable[[], None]) -> None:
        """Run ``start`` soon on a worker (on this thread once stopped); never waits for it."""
        with self._lock:
            if self._stopped:
                worker = None
            else:
                worker = next(self._next)
                worker.starts.put(start)
        if worker is None:
            start()
        else:
            worker.wake()

    def stop(self, timeout: float) -> bool:
        """Run every start handed over, end the workers within ``timeout`` seconds; returns
        whether all ended. (The workers drain their queues in parallel all along.)"""
        with self._lock:
            self._stopped = True
        end = time.monotonic() + timeout
        ended = [worker.stop(max(0.0, end - time.monotonic())) for worker in self._workers]
        return all(ended)
