"""Worker: explicit start, wake on an event, stop within a timeout, failures contained."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from wamgr.clock import VirtualClock
from wamgr.errors import DatabaseUnavailable
from wamgr.workers.base import AT_ONCE, Worker, WorkerStopped

#: Seconds any wait for another thread may take before the test fails.
WAIT_S = 5.0


def _alive(name: str) -> bool:
    return any(t.name == name and t.is_alive() for t in threading.enumerate())


class Recorder(Worker):
    """Counts iterations; each one signals ``ran`` and then waits ``next_due()``."""

    def __init__(self, name: str, next_due: Callable[[Recorder], float | None], **kwargs):
        super().__init__(name, **kwargs)
        self.next_due = next_due
        self.iterations = 0
        self.ran = threading.Semaphore(0)
        self.started_on: str | None = None
        self.stopped_on: str | None = None
        self.fail_with: list[Exception] = []
        self.failed = threading.Semaphore(0)

    def on_start(self) -> None:
        self.started_on = threading.current_thread().name

    def iterate(self) -> float | None:
        self.iterations += 1
        self.ran.release()
        if self.fail_with:
            raise self.fail_with.pop(0)
        return self.next_due(self)

    def on_failure(self, exc: Exception) -> float | None:
        due = super().on_failure(exc)
        self.failed.release()  # the due time is taken: the test may move the clock now
        return due

    def on_stop(self) -> None:
        self.stopped_on = threading.current_thread().name


def _until_woken(_: Recorder) -> None:
    return None


def test_the_constructor_starts_no_thread_and_start_runs_on_a_named_thread():
    worker = Recorder("wamgr-test-start", _until_woken)
    assert not worker.alive and not _alive("wamgr-test-start")
    worker.start()
    try:
        assert worker.ran.acquire(timeout=WAIT_S)
        assert worker.alive and worker.started_on == "wamgr-test-start"
        assert threading.current_thread().name != worker.started_on
    finally:
        assert worker.stop(WAIT_S)
    assert not _alive("wamgr-test-start")
    assert worker.stopped_on == "wamgr-test-start"


def test_names_outside_wamgr_are_refused():
    with pytest.raises(ValueError, match="wamgr-"):
        Recorder("scheduler", _until_woken)


def test_wake_runs_the_next_iteration_at_once():
    worker = Recorder("wamgr-test-wake", lambda w: w.after(3600))
    worker.start()
    try:
        assert worker.ran.acquire(timeout=WAIT_S)
        assert not worker.ran.acquire(timeout=0.05)  # waiting out its hour
        worker.wake()
        assert worker.ran.acquire(timeout=WAIT_S)
        assert worker.iterations == 2
    finally:
        worker.stop(WAIT_S)


def test_at_once_loops_without_waiting():
    worker = Recorder("wamgr-test-at-once", lambda w: AT_ONCE if w.iterations < 3 else None)
    worker.start()
    try:
        for _ in range(3):
            assert worker.ran.acquire(timeout=WAIT_S)
    finally:
        worker.stop(WAIT_S)
    assert worker.iterations == 3


def test_stop_ends_a_long_wait_at_once_and_is_idempotent():
    worker = Recorder("wamgr-test-stop", lambda w: w.after(3600))
    worker.start()
    assert worker.ran.acquire(timeout=WAIT_S)
    assert worker.stop(WAIT_S)
    assert worker.stopping and not worker.alive
    assert worker.stop(0)  # again: nothing to wait for
    assert worker.iterations == 1
    with pytest.raises(WorkerStopped, match="wamgr-test-stop is stopped"):
        worker.start()


def test_stop_before_start_is_safe_and_final():
    worker = Recorder("wamgr-test-never", _until_woken)
    assert worker.stop(0)
    with pytest.raises(WorkerStopped):
        worker.start()
    assert not _alive("wamgr-test-never")
    assert worker.started_on is None and worker.stopped_on is None


def test_starting_twice_is_a_mistake():
    worker = Recorder("wamgr-test-twice", _until_woken)
    worker.start()
    try:
        with pytest.raises(RuntimeError, match="started already"):
            worker.start()
    finally:
        worker.stop(WAIT_S)


def test_stop_says_false_when_an_iteration_outlasts_the_timeout():
    release = threading.Event()
    inside = threading.Event()

    class Stuck(Worker):
        def iterate(self) -> None:
            inside.set()
            release.wait(WAIT_S)

    worker = Stuck("wamgr-test-stuck")
    worker.start()
    assert inside.wait(WAIT_S)
    assert worker.stop(0.05) is False
    assert worker.alive
    release.set()
    assert worker.stop(WAIT_S) is True


def test_stop_from_the_workers_own_thread_does_not_wait_for_itself():
    answers: list[bool] = []

    class SelfStopping(Worker):
        def iterate(self) -> None:
            answers.append(self.stop(WAIT_S))

    worker = SelfStopping("wamgr-test-self-stop")
    worker.start()
    assert worker.stop(WAIT_S)
    assert answers == [False]


def test_failing_iterations_are_logged_and_the_loop_goes_on_a_second_later(
    clock: VirtualClock, logs
):
    worker = Recorder("wamgr-test-failing", _until_woken, clock=clock)
    worker.what = "test pass"
    worker.fail_with = [DatabaseUnavailable("down for a moment"), RuntimeError("a bug")]
    worker.start()
    try:
        assert worker.ran.acquire(timeout=WAIT_S) and worker.failed.acquire(timeout=WAIT_S)
        clock.advance(0.5)  # wakes the wait, but the failure wait (1 s) is not over
        assert not worker.ran.acquire(timeout=0.05)
        clock.advance(0.5)
        assert worker.ran.acquire(timeout=WAIT_S) and worker.failed.acquire(timeout=WAIT_S)
        clock.advance(1.0)
        assert worker.ran.acquire(timeout=WAIT_S)  # the third, after two failures
    finally:
        assert worker.stop(WAIT_S)
    assert worker.iterations == 3
    text = "\n".join(logs)
    assert "WARNING test pass failed: database unavailable: down for a moment" in text
    assert "ERROR test pass failed" in text and "RuntimeError: a bug" in text  # + traceback


def test_a_due_time_passed_while_iterating_is_not_missed(clock: VirtualClock):
    first = threading.Event()
    go_on = threading.Event()

    class Slow(Recorder):
        def iterate(self) -> float | None:
            due = super().iterate()
            if self.iterations == 1:
                first.set()
                go_on.wait(WAIT_S)  # the clock moves past `due` meanwhile
            return due

    worker = Slow("wamgr-test-due", lambda w: w.after(10.0), clock=clock)
    worker.start()
    try:
        assert first.wait(WAIT_S)
        clock.advance(10.0)
        go_on.set()
        assert worker.ran.acquire(timeout=WAIT_S)  # the first
        assert worker.ran.acquire(timeout=WAIT_S)  # the second, although no advance follows
    finally:
        worker.stop(WAIT_S)


def test_hooks_that_fail_are_contained(logs):
    class BadHooks(Recorder):
        def on_start(self) -> None:
            raise RuntimeError("start hook")

        def on_stop(self) -> None:
            raise RuntimeError("stop hook")

    worker = BadHooks("wamgr-test-hooks", _until_woken)
    worker.start()
    assert worker.ran.acquire(timeout=WAIT_S)  # the loop ran despite on_start
    assert worker.stop(WAIT_S)
    text = "\n".join(logs)
    assert "wamgr-test-hooks failed at start" in text
    assert "wamgr-test-hooks failed at stop" in text


def test_pause_ends_on_stop_but_not_on_wake():
    paused = threading.Event()
    resumed = threading.Event()
    results: list[bool] = []

    class Pausing(Worker):
        def iterate(self) -> None:
            paused.set()
            results.append(self.pause(WAIT_S * 4))
            resumed.set()

    worker = Pausing("wamgr-test-pause")
    worker.start()
    assert paused.wait(WAIT_S)
    worker.wake()
    assert not resumed.wait(0.1)
    assert worker.stop(WAIT_S)
    assert results == [True]
