"""Blocking calls made awaitable: a bounded pool of named threads, and one-off threads.

The event loop never waits on a lock, a socket or an actor: each blocking call of the
manager runs on one of ``max_threads`` pool threads and the loop awaits its result. A call
still waiting for a thread when its awaiting task is cancelled never runs; one already
running finishes on its thread (every manager call is bounded by its timeout) and its
result is dropped.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple, ParamSpec, TypeVar

from wamgr.aio.wakeups import Batcher
from wamgr.errors import ManagerStopped

P = ParamSpec("P")
T = TypeVar("T")

#: Pool threads of an AsyncConnectionManager unless told otherwise.
DEFAULT_MAX_THREADS = 16


class OffLoop:
    """Runs blocking calls on at most ``max_threads`` threads named ``{name}_N``, for the
    coroutines of ``loop``; results come back in batches (:mod:`wamgr.aio.wakeups`)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        max_threads: int = DEFAULT_MAX_THREADS,
        name: str = "wamgr-aio",
    ):
        if max_threads < 1:
            raise ValueError(f"max_threads must be at least 1, got {max_threads}")
        self.max_threads = max_threads
        self._pool = ThreadPoolExecutor(max_threads, thread_name_prefix=name)
        # A call waits here, on the loop, until a thread is free: a burst of calls reaches
        # the pool as threads come free instead of all in one turn of the loop, and a call
        # cancelled while it waits has cost the pool nothing.
        self._free = asyncio.Semaphore(max_threads)
        self._outcomes: Batcher[_Outcome] = Batcher(loop, _settle)
        self._lock = threading.Lock()
        self._running = 0

    @property
    def running(self) -> int:
        """How many calls are running on pool threads right now."""
        with self._lock:
            return self._running

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` on a pool thread; its result or exception, awaited.

        Raises ManagerStopped once the pool is shut down.
        """
        async with self._free:
            future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
            call = functools.partial(fn, *args, **kwargs)
            try:
                submitted = self._pool.submit(self._call, future, call)
            except RuntimeError:  # "cannot schedule new futures after shutdown"
                raise ManagerStopped() from None
            try:
                return await future
            except asyncio.CancelledError:
                submitted.cancel()  # it never runs unless it has begun
                raise

    def shutdown(self) -> None:
        """Take no more calls; block until the calls queued or running have ended."""
        self._pool.shutdown(wait=True)

    def _call(self, future: asyncio.Future[Any], call: Callable[[], object]) -> None:
        with self._lock:
            self._running += 1
        try:
            outcome = _Outcome(future, call(), None)
        except BaseException as exc:
            outcome = _Outcome(future, None, exc)
        finally:
            with self._lock:
                self._running -= 1
        self._outcomes.put(outcome)


class _Outcome(NamedTuple):
    """What one call returned or raised, for the future that awaits it."""

    future: asyncio.Future[Any]
    result: object
    error: BaseException | None


def _settle(outcome: _Outcome) -> None:
    """On the loop: resolve the call's future (unless its awaiter gave up)."""
    if outcome.future.done():
        return
    if outcome.error is not None:
        outcome.future.set_exception(outcome.error)
    else:
        outcome.future.set_result(outcome.result)


def start_thread(name: str, fn: Callable[[], T]) -> Future[T]:
    """Run ``fn`` on a new thread called ``name``; its outcome lands in the returned future.

    For the long, rare steps (starting and stopping the manager) that must not take a pool
    thread from the calls. Await it with ``asyncio.wrap_future``; cancelling that await
    before the thread begins means ``fn`` never runs.
    """
    future: Future[T] = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            result = fn()
        except BaseException as exc:
            future.set_exception(exc)
        else:
            future.set_result(result)

    threading.Thread(target=run, name=name).start()
    return future
