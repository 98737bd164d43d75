"""Pooled actors: pykka actors that share a few threads instead of owning one each.

A :class:`pykka.ThreadingActor` is one OS thread, parked in its inbox while idle. With a
tenant per actor that is 10,000 threads at 10,000 tenants: ~23 KiB each, a thread start
per tenant on a restore, a thread exit per tenant on a stop, and every message a wake-up of
its own thread. A :class:`PooledActor` keeps pykka's contract (an inbox, one message at a
time, ``tell`` / ``ask`` / ``stop``, ``on_start`` / ``on_stop`` / ``on_failure``, the
``ActorRegistry``) but owns no thread: a message put in its inbox makes it *runnable*, and
a thread of its :class:`ActorPool` runs a *turn*: up to :data:`TURN` messages, one at a
time, then it goes back to the pool's queue if more wait. An actor is never in two turns at
once, so its handlers still run one at a time, and in order.

The pool runs ``min_threads`` threads (one by default); it adds one when work has waited
``grow_after_s`` with no turn finishing meanwhile (every thread is held by a handler that
blocks: a send that waits on the network, a statement on a slow database), up to
``max_threads``, and a thread idle for ``idle_s`` ends (down to ``min_threads``). So a
blocked handler holds one thread, not the others' turns, while a burst of quick messages
(a restore, a stop) runs on one thread. Quick handlers hold the interpreter lock all the
time they run: two threads running them do not run them faster, they hand the lock to each
other and meet on every lock the handlers share (a stop of 10,000 tenants took 1.2–2.2 s on
four threads, 0.9 s on one). Handlers should still not block on other actors (none of
wamgr's do).
"""

from __future__ import annotations

import itertools
import queue
import sys
import threading
import time
from collections import deque
from typing import Any

import pykka
from loguru import logger

#: Messages an actor handles in one turn before others get the thread.
TURN = 32
#: Threads a pool keeps even when idle (more run only while handlers block; see above).
MIN_THREADS = 1
#: Seconds work waits with no turn finishing before the pool adds a thread.
GROW_AFTER_S = 0.05
#: Threads a pool grows to at most (handlers that block each hold one).
MAX_THREADS = 256
#: Seconds an idle thread above ``min_threads`` waits for work before it ends: soon after
#: the handlers that blocked are done, quick turns run on one thread again.
IDLE_S = 5.0

_STOP = object()  # the pool's "end this thread" item


class ActorPool:
    """Threads that run the turns of runnable :class:`PooledActor` s, first come first served.

    ``stop`` ends the threads once the queue is drained; a pooled actor scheduled after that
    runs its turn on the caller's thread (no message is stranded in an inbox).
    """

    def __init__(
        self,
        name: str = "wamgr-actors",
        min_threads: int = MIN_THREADS,
        max_threads: int = MAX_THREADS,
        idle_s: float = IDLE_S,
        grow_after_s: float = GROW_AFTER_S,
    ):
        self._name = name
        self._min = max(1, min_threads)
        self._max = max(self._min, max_threads)
        self._idle_s = idle_s
        self._grow_after_s = grow_after_s
        self._runnable: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self._progress_at = time.monotonic()  # when a turn last finished
        self._work_waits = threading.Event()  # set while turns are queued: the watcher looks
        self._watcher: threading.Thread | None = None
        self._stopped = False
        self._numbers = itertools.count()

    @property
    def threads(self) -> int:
        """How many threads run turns now (the watcher not counted)."""
        with self._lock:
            return len(self._threads)

    def schedule(self, actor: PooledActor) -> None:
        """Run a turn of ``actor`` soon (on this thread once the pool is stopped)."""
        if not self._queue(actor):
            actor._turn()

    def _queue(self, actor: PooledActor) -> bool:
        """Queue a turn of ``actor`` for the threads; False (nothing queued) once stopped.

        No lock on this path (a stop's burst of tells queues thousands of turns while the
        threads run them): the lock is taken only to start the first threads.
        """
        if self._stopped:
            return False
        self._runnable.put(actor)
        if not self._work_waits.is_set():
            self._work_waits.set()
        if len(self._threads) < self._min or self._watcher is None:
            with self._lock:
                while not self._stopped and len(self._threads) < self._min:
                    if not self._start_thread():
                        break
                if not self._stopped and self._watcher is None:
                    self._start_watcher()
        if self._stopped and not self._threads:  # stopped meanwhile, its threads gone
            self._run_queued_here()
        return True

    def stop(self, timeout: float) -> bool:
        """Run what is queued, end the threads within ``timeout`` seconds; returns whether all
        ended. The last thread to end runs the turns queued behind the stop (or this one,
        if the pool had none)."""
        with self._lock:
            threads = list(self._threads)
            if not self._stopped:
                self._stopped = True
                for _ in threads:
                    self._runnable.put(_STOP)
                self._work_waits.set()  # the watcher sees the stop
            if self._watcher is not None:
                threads.append(self._watcher)
        end = time.monotonic() + timeout
        me = threading.current_thread()
        for thread in threads:
            if thread is not me:
                thread.join(max(0.0, end - time.monotonic()))
        if not self._threads:
            self._run_queued_here()
        return not any(t.is_alive() for t in threads if t is not me)

    def _run_queued_here(self) -> None:
        """Run every queued turn on this thread (the pool is stopped and its threads gone)."""
        while True:
            try:
                item = self._runnable.get_nowait()
            except queue.Empty:
                return
            if item is not _STOP:
                item._turn()

    def _start_thread(self) -> bool:
        """Start one more thread (the lock is held); False if none could start: the turns
        then wait for the threads the pool has (the caller's tell still returns)."""
        thread = threading.Thread(
            target=self._work, name=f"{self._name}-{next(self._numbers)}", daemon=True
        )
        try:
            thread.start()
        except RuntimeError as exc:
            logger.warning("{}: no thread started, {} run: {}", self._name, len(self._threads), exc)
            return False
        self._threads.add(thread)
        return True

    def _start_watcher(self) -> None:
        """Start the thread that grows the pool when turns stall (the lock is held)."""
        watcher = threading.Thread(target=self._watch, name=f"{self._name}-watcher", daemon=True)
        try:
            watcher.start()
        except RuntimeError as exc:  # tried again at the next schedule
            logger.warning("{}: no watcher thread started: {}", self._name, exc)
            return
        self._watcher = watcher

    def _watch(self) -> None:
        """Add a thread whenever turns have waited ``grow_after_s`` with none finishing (every
        thread is held by a handler that blocks); sleep while nothing is queued."""
        while True:
            self._work_waits.wait()
            if self._stopped:
                return
            time.sleep(self._grow_after_s)
            if self._stopped:
                return
            if self._runnable.empty():
                self._work_waits.clear()
                if not self._runnable.empty():  # queued as it cleared: look again
                    self._work_waits.set()
                continue
            if time.monotonic() - self._progress_at >= self._grow_after_s:
                with self._lock:
                    if not self._stopped and len(self._threads) < self._max:
                        self._start_thread()

    def _work(self) -> None:
        me = threading.current_thread()
        while True:
            try:
                item = self._runnable.get(timeout=self._idle_s)
            except queue.Empty:
                with self._lock:  # idle that long: end, down to the floor
                    if len(self._threads) > self._min:
                        self._threads.discard(me)
                        return
                continue
            if item is _STOP:
                with self._lock:
                    self._threads.discard(me)
                    last = not self._threads
                if last:  # turns queued behind the stop would wait for nobody
                    self._run_queued_here()
                return
            try:
                item._turn()
            except BaseException:  # a turn contains its failures; this is the last guard
                logger.exception("an actor's turn failed")
            self._progress_at = time.monotonic()


class _Mailbox:
    """A pooled actor's inbox: putting a message makes the actor runnable."""

    __slots__ = ("_actor", "_items")

    def __init__(self, actor: PooledActor):
        self._actor = actor
        self._items: deque[Any] = deque()

    def put(self, envelope: Any, block: bool = True, timeout: float | None = None) -> None:
        """Queue ``envelope`` (any thread) and make the actor runnable."""
        self._items.append(envelope)
        self._actor._wake()

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """The oldest message (only the actor's turn calls this, with one waiting)."""
        return self._items.popleft()

    def empty(self) -> bool:
        """Whether no message waits."""
        return not self._items


class PooledActor(pykka.Actor):
    """A pykka actor whose messages are handled on an :class:`ActorPool`'s threads.

    Start it with ``PooledActor.start(pool, ...)`` as any pykka actor (the pool is the first
    argument of ``__init__``); ``stop``, ``tell``, ``ask`` and proxies work as pykka's. Its
    ``on_start`` runs in its first turn, before any message.
    """

    def __init__(self, pool: ActorPool, *_args: Any, **_kwargs: Any) -> None:
        self._pool = pool
        self._turn_lock = threading.Lock()
        self._scheduled = True  # nothing runs before _start_actor_loop schedules the first turn
        self._set_up = False
        super().__init__()

    def stop_now(self) -> None:
        """End this actor from its own handler, without a message: what is still in its
        inbox is answered with ``ActorDeadError`` (pykka's ``stop()`` queues a stop message,
        handled after those: one more turn per actor, 10,000 in a stop of 10,000 tenants)."""
        self._stop()

    def _create_actor_inbox(self) -> _Mailbox:  # type: ignore[override]
        return _Mailbox(self)

    @staticmethod
    def _create_future() -> pykka.Future[Any]:
        return pykka.ThreadingFuture()

    def _start_actor_loop(self) -> None:
        """Schedule the first turn (it runs ``on_start``, then what waits in the inbox)."""
        self._pool.schedule(self)

    def _wake(self) -> None:
        """A message arrived: schedule a turn unless one is scheduled or running."""
        with self._turn_lock:
            if self._scheduled:
                return
            self._scheduled = True
        self._pool.schedule(self)

    def _turn(self) -> None:
        """Handle up to :data:`TURN` messages, as pykka's actor loop does each; once stopped,
        answer what is left with ``ActorDeadError``. Reschedules itself if more wait; once
        the pool stopped, runs the next turn here in a loop (not a call deeper each turn)."""
        inbox = self.actor_inbox
        if not self._set_up:
            self._set_up = True
            self._actor_loop_setup()
        while True:
            for _ in range(TURN):
                if self.actor_stopped.is_set() or inbox.empty():
                    break
                self._handle_envelope(inbox.get())
            if self.actor_stopped.is_set():
                self._actor_loop_teardown()
            with self._turn_lock:
                again = not inbox.empty()
                self._scheduled = again
            if not again or self._pool._queue(self):
                return

    def _handle_envelope(self, envelope: Any) -> None:
        """One message, exactly as :meth:`pykka.Actor._actor_loop_running` handles it."""
        try:
            response = self._handle_receive(envelope.message)
            if envelope.reply_to is not None:
                envelope.reply_to.set(response)
        except Exception:
            if envelope.reply_to is not None:  # the asker gets it
                envelope.reply_to.set_exception()
            else:
                self._handle_failure(*sys.exc_info())
                try:
                    self.on_failure(*sys.exc_info())
                except Exception:
                    self._handle_failure(*sys.exc_info())
        except BaseException as exc:  # as pykka: stop this actor and every other
            logger.warning("{!r} in {}: stopping all actors", exc, type(self).__name__)
            self._stop()
            pykka.ActorRegistry.stop_all(block=False)
