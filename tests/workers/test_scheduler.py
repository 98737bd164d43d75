"""The scheduler on a virtual clock: nothing runs early, everything due runs, in order."""

import threading

import pytest

from wamgr.clock import VirtualClock
from wamgr.workers.base import WorkerStopped
from wamgr.workers.scheduler import Scheduler

WAIT_S = 5.0


@pytest.fixture
def scheduler(clock):
    s = Scheduler(clock)
    s.start()
    yield s
    assert s.stop(WAIT_S)


def _recorder():
    ran: list[str] = []
    lock = threading.Lock()
    events: dict[str, threading.Event] = {}

    def action(name: str):
        events[name] = threading.Event()

        def run() -> None:
            with lock:
                ran.append(name)
            events[name].set()

        return run

    return ran, events, action


def test_runs_due_actions_in_due_order_and_not_before(scheduler, clock: VirtualClock):
    ran, events, action = _recorder()
    scheduler.schedule(5.0, action("five"))
    scheduler.schedule(3.0, action("three"))
    scheduler.schedule(10.0, action("ten"))
    clock.advance(2.9)
    assert not events["three"].wait(0.05)
    clock.advance(2.2)
    assert events["five"].wait(2)
    assert ran == ["three", "five"]
    clock.advance(5.0)
    assert events["ten"].wait(2)
    assert ran == ["three", "five", "ten"]


def test_cancelled_action_never_runs(scheduler, clock):
    ran, events, action = _recorder()
    task = scheduler.schedule(1.0, action("cancelled"))
    scheduler.schedule(2.0, action("kept"))
    scheduler.cancel(task)
    clock.advance(3.0)
    assert events["kept"].wait(2)
    assert ran == ["kept"]


def test_a_failing_action_does_not_stop_the_loop(scheduler, clock):
    _ran, events, action = _recorder()

    def boom() -> None:
        raise RuntimeError("boom")

    scheduler.schedule(1.0, boom)
    scheduler.schedule(1.0, action("after"))
    clock.advance(1.0)
    assert events["after"].wait(2)


def test_a_new_earlier_task_wakes_the_loop(scheduler, clock):
    ran, events, action = _recorder()
    scheduler.schedule(100.0, action("late"))
    scheduler.schedule(0.0, action("now"))
    assert events["now"].wait(2)
    assert ran == ["now"]


def test_stop_drops_pending_tasks_ends_the_thread_and_refuses_new_tasks(clock):
    s = Scheduler(clock, name="wamgr-scheduler-test")
    s.start()
    ran = threading.Event()
    s.schedule(10.0, ran.set)
    assert s.stop(timeout=WAIT_S)
    assert not any(t.name == "wamgr-scheduler-test" for t in threading.enumerate())
    assert s.pending() == 0
    clock.advance(10.0)
    assert not ran.is_set()
    with pytest.raises(WorkerStopped, match="wamgr-scheduler-test is stopped"):
        s.schedule(1.0, lambda: None)


def test_tasks_scheduled_before_start_run_once_it_starts(clock):
    s = Scheduler(clock, name="wamgr-scheduler-early")
    ran = threading.Event()
    s.schedule(1.0, ran.set)
    clock.advance(1.0)
    assert not any(t.name == "wamgr-scheduler-early" for t in threading.enumerate())
    s.start()
    try:
        assert ran.wait(WAIT_S)
    finally:
        assert s.stop(WAIT_S)


def test_real_clock_runs_a_short_delay():
    s = Scheduler()
    s.start()
    done = threading.Event()
    s.schedule(0.01, done.set)
    try:
        assert done.wait(2)
    finally:
        assert s.stop(WAIT_S)
