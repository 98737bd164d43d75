"""The pooled actors (wamgr/actors/pool.py) keep pykka's contract, and handle each actor's
messages one at a time and in order.

The contract tests run the same scenario on a :class:`pykka.ThreadingActor` and on a
:class:`PooledActor`, so "as pykka does" is checked against pykka itself. The pool's threads
(turns, growth, idle threads, stopping) are tested in test_pool_threads.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pykka
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pool_probes import WAIT, Log, PooledProbe, ThreadingProbe, occupy, stop_all

from wamgr.actors.base import PooledDispatchingActor
from wamgr.actors.pool import ActorPool, PooledActor


class FailingStart(PooledProbe):
    def on_start(self) -> None:
        raise RuntimeError("no start")


class ThreadingFailingStart(ThreadingProbe):
    def on_start(self) -> None:
        raise RuntimeError("no start")


@pytest.fixture
def pool() -> Iterator[ActorPool]:
    """A small pool; its threads must all end when the test is over."""
    the_pool = ActorPool("test-pool", min_threads=1, max_threads=4, idle_s=5.0)
    yield the_pool
    assert the_pool.stop(WAIT)


@pytest.fixture
def refs() -> Iterator[list[pykka.ActorRef]]:
    """Refs a test started; whatever is still alive is stopped afterwards."""
    started: list[pykka.ActorRef] = []
    yield started
    stop_all(started)


Start = Callable[..., pykka.ActorRef]


@pytest.fixture(params=["threading", "pooled"])
def start(request: pytest.FixtureRequest, pool: ActorPool, refs: list) -> Start:
    """``start(log, failing_start=False)`` starts a probe of the parametrized kind."""

    def started(log: Log, failing_start: bool = False) -> pykka.ActorRef:
        if request.param == "threading":
            kind = ThreadingFailingStart if failing_start else ThreadingProbe
            ref = kind.start(log)
        else:
            kind = FailingStart if failing_start else PooledProbe
            ref = kind.start(pool, log)
        refs.append(ref)
        return ref

    return started


# pykka's contract, checked against pykka's own ThreadingActor


def test_ask_returns_the_handlers_value_and_stop_runs_on_stop(start: Start) -> None:
    log = Log()
    ref = start(log)
    assert ref.ask("hello", timeout=WAIT) == "hello"
    assert ref.stop(timeout=WAIT) is True
    assert log.items == ["start", "hello", "stop"]
    assert ref.actor_stopped.is_set()
    assert pykka.ActorRegistry.get_by_urn(ref.actor_urn) is None
    with pytest.raises(pykka.ActorDeadError):
        ref.tell("late")
    with pytest.raises(pykka.ActorDeadError):
        ref.ask("late", timeout=WAIT)
    assert ref.stop(timeout=WAIT) is False  # stopping again: no error, nothing done


def test_an_exception_handling_an_ask_reaches_the_asker_and_the_actor_lives(
    start: Start,
) -> None:
    log = Log()
    ref = start(log)
    with pytest.raises(ValueError, match="bad ask"):
        ref.ask(("raise", ValueError("bad ask")), timeout=WAIT)
    assert ref.ask("after", timeout=WAIT) == "after"
    assert not any(isinstance(item, tuple) and item[0] == "failure" for item in log.items)


def test_an_exception_handling_a_tell_calls_on_failure_and_stops_the_actor(
    start: Start,
) -> None:
    """pykka: a told message's exception is logged, ``on_failure`` runs, the actor stops
    (unregistered, ``on_stop`` not called) and what waits in its inbox gets ActorDeadError."""
    log = Log()
    ref = start(log)
    gate = occupy(ref)
    ref.tell(("raise", ValueError("bad tell")))
    behind = ref.ask("behind", block=False)
    gate.set()
    log.wait_for(lambda items: ("failure", ValueError) in items)
    with pytest.raises(pykka.ActorDeadError):
        behind.get(timeout=WAIT)
    assert ref.actor_stopped.is_set()
    assert pykka.ActorRegistry.get_by_urn(ref.actor_urn) is None
    assert "stop" not in log.items and "behind" not in log.items


def test_an_ask_queued_behind_a_stop_gets_actor_dead_error(start: Start) -> None:
    log = Log()
    ref = start(log)
    gate = occupy(ref)
    stopping = ref.stop(block=False)
    behind = ref.ask("behind", block=False)
    gate.set()
    assert stopping.get(timeout=WAIT) is True
    with pytest.raises(pykka.ActorDeadError):
        behind.get(timeout=WAIT)
    assert log.items[-1] == "stop" and "behind" not in log.items


def test_a_failing_on_start_stops_the_actor(start: Start) -> None:
    log = Log()
    ref = start(log, failing_start=True)
    with pytest.raises(pykka.ActorDeadError):
        ref.ask("first", timeout=WAIT)
    assert ref.actor_stopped.is_set()
    assert pykka.ActorRegistry.get_by_urn(ref.actor_urn) is None
    assert log.items == []


class EndsOnRequest(PooledProbe):
    """Ends itself (``stop_now``) when asked ``"end"``."""

    def on_receive(self, message: Any) -> Any:
        if message == "end":
            self.stop_now()
            return "ended"
        return super().on_receive(message)


def test_stop_now_ends_the_actor_in_its_handler_and_answers_the_rest_dead(
    pool: ActorPool, refs: list
) -> None:
    log = Log()
    ref = EndsOnRequest.start(pool, log)
    refs.append(ref)
    gate = occupy(ref)
    ending = ref.ask("end", block=False)
    behind = ref.ask("behind", block=False)
    gate.set()
    assert ending.get(timeout=WAIT) == "ended"  # the handler that ended it still answers
    with pytest.raises(pykka.ActorDeadError):
        behind.get(timeout=WAIT)
    assert ref.actor_stopped.is_set() and not ref.is_alive()
    assert pykka.ActorRegistry.get_by_urn(ref.actor_urn) is None
    assert log.items[-1] == "stop" and "behind" not in log.items


def test_a_proxy_works_on_a_pooled_actor(pool: ActorPool, refs: list) -> None:
    log = Log()
    ref = PooledProbe.start(pool, log)
    refs.append(ref)
    proxy = ref.proxy()
    assert proxy.on_receive("via proxy").get(timeout=WAIT) == "via proxy"
    proxy.log = Log()  # a ProxySetAttr, handled in the actor's turn
    assert proxy.log.get(timeout=WAIT) is not log


class Boom:
    """A told event whose handler raises."""


class Ping:
    """An asked command."""


class Dispatcher(PooledDispatchingActor):
    commands: ClassVar[dict[type, str]] = {Ping: "on_ping"}
    events: ClassVar[dict[type, str]] = {Boom: "on_boom"}

    def __init__(self, pool: ActorPool) -> None:
        super().__init__(pool)
        self.failures = 0

    def on_ping(self, _message: Ping) -> str:
        return "pong"

    def on_boom(self, _message: Boom) -> None:
        raise RuntimeError("boom")

    def on_failure(self, *_exc_info: Any) -> None:
        self.failures += 1


def test_a_pooled_dispatching_actor_contains_a_failing_event_and_keeps_running(
    pool: ActorPool, refs: list
) -> None:
    ref = Dispatcher.start(pool)
    refs.append(ref)
    ref.tell(Boom())
    ref.tell(Boom())
    assert ref.ask(Ping(), timeout=WAIT) == "pong"
    assert ref.is_alive()
    assert ref.proxy().failures.get(timeout=WAIT) == 0


# ordering and exclusion


class Counting(PooledActor):
    """Records ``(sender, seq)`` messages in order and the most handlers it ever ran at once."""

    def __init__(self, pool: ActorPool) -> None:
        super().__init__(pool)
        self.running = 0
        self.peak = 0
        self.seen: list[tuple[int, int]] = []

    def on_receive(self, message: Any) -> Any:
        self.running += 1  # only ever one handler of this actor at a time: no lock
        self.peak = max(self.peak, self.running)
        if message == "report":
            result: Any = (self.peak, list(self.seen))
        else:
            self.seen.append(message)
            time.sleep(0)  # give another thread the GIL mid-handler, where overlap would show
            result = None
        self.running -= 1
        return result


def tell_from_threads(
    refs: list[pykka.ActorRef], plans: list[list[int]]
) -> list[tuple[int, list[tuple[int, int]]]]:
    """Each plan is a thread telling the actors at those indexes ``(thread, seq)`` in turn, all
    threads released at once; returns each actor's (peak handlers at once, messages seen)."""
    barrier = threading.Barrier(len(plans))
    errors: list[BaseException] = []

    def sender(number: int, plan: list[int]) -> None:
        try:
            barrier.wait(WAIT)
            for seq, index in enumerate(plan):
                refs[index].tell((number, seq))
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    threads = [
        threading.Thread(target=sender, args=(number, plan)) for number, plan in enumerate(plans)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert not errors and not any(t.is_alive() for t in threads)
    return [ref.ask("report", timeout=WAIT) for ref in refs]


def assert_in_order(plans: list[list[int]], reports: list[Any]) -> None:
    """Every actor handled one message at a time, each sender's messages in the order sent."""
    for index, (peak, seen) in enumerate(reports):
        assert peak == 1
        expected = sorted(
            (number, seq)
            for number, plan in enumerate(plans)
            for seq, target in enumerate(plan)
            if target == index
        )
        assert sorted(seen) == expected  # nothing lost, nothing twice
        for number in range(len(plans)):
            mine = [seq for sender, seq in seen if sender == number]
            assert mine == sorted(mine)


def test_an_actors_messages_are_handled_one_at_a_time_in_order(refs: list) -> None:
    pool = ActorPool("test-order", min_threads=1, max_threads=3)
    try:
        actors = [Counting.start(pool) for _ in range(8)]
        refs.extend(actors)
        plans = [[(i + thread) % len(actors) for i in range(200)] for thread in range(4)]
        reports = tell_from_threads(actors, plans)
        assert_in_order(plans, reports)
    finally:
        stop_all(refs)
        assert pool.stop(WAIT)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    actors=st.integers(min_value=1, max_value=4),
    plans=st.lists(
        st.lists(st.integers(min_value=0, max_value=3), max_size=60), min_size=1, max_size=4
    ),
    max_threads=st.integers(min_value=1, max_value=3),
    stop_pool=st.booleans(),
)
def test_interleaved_tells_keep_per_actor_order_and_exclusion(
    actors: int, plans: list[list[int]], max_threads: int, stop_pool: bool
) -> None:
    """Also while the pool stops under the senders (the rest run on the senders' threads)."""
    plans = [[target % actors for target in plan] for plan in plans]
    pool = ActorPool("test-prop", min_threads=1, max_threads=max_threads)
    refs = [Counting.start(pool) for _ in range(actors)]
    stopper = threading.Thread(target=pool.stop, args=(WAIT,))
    try:
        if stop_pool:
            stopper.start()
        assert_in_order(plans, tell_from_threads(refs, plans))
    finally:
        stop_all(refs)
        if stop_pool:
            stopper.join(WAIT)
        assert pool.stop(WAIT)


def test_on_start_runs_before_messages_told_before_its_turn(refs: list) -> None:
    pool = ActorPool("test-start", min_threads=1, max_threads=1)
    try:
        blocker = PooledProbe.start(pool, Log())
        refs.append(blocker)
        gate = occupy(blocker)  # the pool's one thread is busy: the new actor's turn waits
        log = Log()
        ref = PooledProbe.start(pool, log)
        refs.append(ref)
        ref.tell("a")
        ref.tell("b")
        assert log.items == []  # its first turn has not run yet
        gate.set()
        assert ref.ask("c", timeout=WAIT) == "c"
        assert log.items == ["start", "a", "b", "c"]
    finally:
        stop_all(refs)
        assert pool.stop(WAIT)
