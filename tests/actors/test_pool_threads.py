"""The threads of an :class:`ActorPool` (wamgr/actors/pool.py): a turn of at most
:data:`TURN` messages (no actor starves another), growth while handlers block but never
beyond ``max_threads``, idle threads ending after ``idle_s``, and no message stranded once
the pool stopped (later turns run on the caller's thread).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pykka
import pytest
from pool_probes import WAIT, Log, PooledProbe, occupy, stop_all

from wamgr.actors.pool import TURN, ActorPool, PooledActor


@pytest.fixture
def refs() -> Iterator[list[pykka.ActorRef]]:
    """Refs a test started; whatever is still alive is stopped afterwards."""
    started: list[pykka.ActorRef] = []
    yield started
    stop_all(started)


# fairness


def test_a_long_backlog_does_not_starve_another_actor(refs: list) -> None:
    pool = ActorPool("test-fair", min_threads=1, max_threads=1)
    try:
        busy_log, other_log = Log(), Log()
        busy = PooledProbe.start(pool, busy_log)
        other = PooledProbe.start(pool, other_log)
        refs.extend([busy, other])
        busy.ask("ready", timeout=WAIT)
        other.ask("ready", timeout=WAIT)
        gate = occupy(busy)
        for number in range(10 * TURN):
            busy.tell(number)
        handled_before = other.ask(("call", lambda: len(busy_log.items)), block=False)
        gate.set()
        # "start", "ready", then the blocked message and the rest of its turn: TURN in all
        assert handled_before.get(timeout=WAIT) == 2 + TURN
        assert busy.ask("end", timeout=WAIT) == "end"
        assert busy_log.items[-10 * TURN - 1 :] == [*range(10 * TURN), "end"]
    finally:
        stop_all(refs)
        assert pool.stop(WAIT)


# growth, limit, shrinking


class Blocking(PooledActor):
    """Each message blocks on a shared gate; counts how many handlers run at once."""

    def __init__(self, pool: ActorPool, shared: dict[str, Any]) -> None:
        super().__init__(pool)
        self.shared = shared

    def on_receive(self, message: Any) -> Any:
        shared = self.shared
        with shared["changed"]:
            shared["running"] += 1
            shared["peak"] = max(shared["peak"], shared["running"])
            shared["changed"].notify_all()
        try:
            assert shared["gate"].wait(WAIT)
        finally:
            with shared["changed"]:
                shared["running"] -= 1
                shared["done"] += 1
                shared["changed"].notify_all()
        return message


def blocking_group() -> dict[str, Any]:
    return {
        "changed": threading.Condition(),
        "gate": threading.Event(),
        "running": 0,
        "peak": 0,
        "done": 0,
    }


def wait_threads(pool: ActorPool, count: int, timeout: float = WAIT) -> None:
    """Poll (bounded) until the pool has ``count`` threads."""
    end = time.monotonic() + timeout
    while pool.threads != count:
        assert time.monotonic() < end, f"{pool.threads} threads, not {count}"
        time.sleep(0.005)


def test_the_pool_grows_while_handlers_block_but_not_beyond_max_threads(refs: list) -> None:
    pool = ActorPool("test-grow", min_threads=1, max_threads=4, idle_s=0.05)
    shared = blocking_group()
    try:
        actors = [Blocking.start(pool, shared) for _ in range(6)]
        refs.extend(actors)
        for ref in actors:
            ref.tell("work")
        with shared["changed"]:
            assert shared["changed"].wait_for(lambda: shared["running"] == 4, WAIT)
        assert pool.threads == 4  # each blocked handler holds one; none more can start
        shared["gate"].set()
        with shared["changed"]:
            assert shared["changed"].wait_for(lambda: shared["done"] == 6, WAIT)
        assert shared["peak"] == 4
        wait_threads(pool, 1)  # idle threads above min_threads end after idle_s
        threading.Event().wait(0.15)  # three idle_s more: still the floor, not below
        assert pool.threads == 1
        assert actors[0].ask("again", timeout=WAIT) == "again"  # the pool still runs turns
    finally:
        shared["gate"].set()
        stop_all(refs)
        assert pool.stop(WAIT)


def test_busy_threads_do_not_end_and_queued_work_is_run(refs: list) -> None:
    pool = ActorPool("test-busy", min_threads=1, max_threads=2, idle_s=0.02)
    shared = blocking_group()
    try:
        actors = [Blocking.start(pool, shared) for _ in range(3)]
        refs.extend(actors)
        for ref in actors:
            ref.tell("work")
        with shared["changed"]:
            assert shared["changed"].wait_for(lambda: shared["running"] == 2, WAIT)
            # several idle_s pass with both threads in handlers and one turn queued
            assert not shared["changed"].wait_for(lambda: shared["running"] != 2, 0.1)
        assert pool.threads == 2
        shared["gate"].set()
        with shared["changed"]:
            assert shared["changed"].wait_for(lambda: shared["done"] == 3, WAIT)
        assert shared["peak"] == 2
    finally:
        shared["gate"].set()
        stop_all(refs)
        assert pool.stop(WAIT)


# stopping the pool


def pool_threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(f"{name}-")]


def test_stopping_the_pool_ends_its_threads_and_later_messages_run_on_the_caller(
    refs: list,
) -> None:
    pool = ActorPool("test-stop", min_threads=2, max_threads=4)
    log = Log()
    ref = PooledProbe.start(pool, log)
    refs.append(ref)
    assert ref.ask("before", timeout=WAIT) == "before"
    assert pool_threads("test-stop")
    assert pool.stop(WAIT) is True
    assert pool.threads == 0 and pool_threads("test-stop") == []

    where: list[threading.Thread] = []
    ref.tell(("call", lambda: where.append(threading.current_thread())))
    assert where == [threading.current_thread()]  # handled before tell returned, right here
    assert ref.ask("asked after", timeout=WAIT) == "asked after"
    assert ref.stop(timeout=WAIT) is True
    assert log.items[-1] == "stop"
    assert pool.stop(WAIT) is True  # stopping again is harmless


def test_stopping_the_pool_runs_what_is_queued_first(refs: list) -> None:
    pool = ActorPool("test-drain", min_threads=1, max_threads=1)
    busy_log, other_log = Log(), Log()
    busy = PooledProbe.start(pool, busy_log)
    other = PooledProbe.start(pool, other_log)
    refs.extend([busy, other])
    other.ask("ready", timeout=WAIT)
    gate = occupy(busy)
    for number in range(3 * TURN):
        busy.tell(number)
    other.tell("queued")
    assert pool.stop(0.01) is False  # a handler still blocks the thread
    gate.set()
    assert pool.stop(WAIT) is True
    assert busy_log.items[-3 * TURN :] == list(range(3 * TURN))
    assert other_log.items[-1] == "queued"


@pytest.mark.slow  # tens of thousands of messages, ~0.3 s
def test_a_backlog_longer_than_the_recursion_limit_drains_after_the_pool_stopped(
    refs: list,
) -> None:
    """Once the pool stopped, an actor's next turns run in a loop on the thread that has it,
    not one call deeper per turn (which raised RecursionError, stranding the rest and
    leaving the actor scheduled forever: every later ask timed out)."""
    pool = ActorPool("test-deep", min_threads=1, max_threads=1)
    log = Log()
    busy = PooledProbe.start(pool, log)
    refs.append(busy)
    gate = occupy(busy)
    backlog = sys.getrecursionlimit() * TURN
    for number in range(backlog):
        busy.tell(number)
    assert pool.stop(0.0) is False  # stopped, its one thread still in the blocked handler
    gate.set()
    assert pool.stop(WAIT) is True
    assert len(log.items) == 2 + backlog  # "start", the blocked message, the backlog
    assert busy.ask("after", timeout=WAIT) == "after"


def test_a_thread_that_cannot_start_leaves_the_turn_to_the_threads_there_are(
    refs: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Out of threads (``Thread.start`` raises RuntimeError), a tell still returns and its
    message is handled once a thread is free; the pool counts only threads that run."""
    real_start = threading.Thread.start
    started: list[threading.Thread] = []

    def start_one(thread: threading.Thread) -> None:  # the pool gets one thread, no more
        if thread.name.startswith("test-nothread-"):
            if started:
                raise RuntimeError("can't start new thread")
            started.append(thread)
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start_one)
    pool = ActorPool("test-nothread", min_threads=1, max_threads=4)
    busy, other = PooledProbe.start(pool, Log()), PooledProbe.start(pool, Log())
    refs.extend([busy, other])
    assert busy.ask("ready", timeout=WAIT) == other.ask("ready", timeout=WAIT) == "ready"
    gate = occupy(busy)  # the one thread is busy: the next turn would need another
    answer = other.ask("waits for a thread", block=False)
    assert pool.threads == 1
    gate.set()
    assert answer.get(timeout=WAIT) == "waits for a thread"
    assert pool.stop(WAIT) is True
