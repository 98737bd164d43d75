"""PeriodicWorker: passes on schedule, failures contained, wake and stop are prompt."""

from __future__ import annotations

import threading

from wamgr.errors import DatabaseUnavailable
from wamgr.workers.periodic import PeriodicWorker

WAIT_S = 5.0


class Counting(PeriodicWorker):
    what = "counting pass"

    def __init__(self, fail_first: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.passes = 0
        self.fail_first = fail_first
        self.passed = threading.Semaphore(0)

    def run_once(self) -> int:
        self.passes += 1
        self.passed.release()
        if self.passes == 1 and self.fail_first == 1:
            raise DatabaseUnavailable("down for a moment")
        if self.passes == 2 and self.fail_first:
            raise RuntimeError("a bug in one pass")
        return self.passes


def test_failing_passes_do_not_stop_the_loop(logs):
    worker = Counting(fail_first=1, interval_s=0.01, name="wamgr-test-periodic")
    worker.start()
    try:
        for _ in range(3):
            assert worker.passed.acquire(timeout=WAIT_S)
    finally:
        assert worker.stop(WAIT_S)
    assert not any(t.name == "wamgr-test-periodic" for t in threading.enumerate())
    text = "\n".join(logs)
    assert "counting pass failed (next one in 0.01 s): database unavailable" in text
    assert "RuntimeError: a bug in one pass" in text


def test_first_pass_waits_an_interval_unless_asked_not_to():
    later = Counting(interval_s=3600, name="wamgr-test-later")
    now = Counting(interval_s=3600, name="wamgr-test-now", first_pass_now=True)
    later.start()
    now.start()
    try:
        assert now.passed.acquire(timeout=WAIT_S)
        assert not later.passed.acquire(timeout=0.05)
    finally:
        assert later.stop(WAIT_S) and now.stop(WAIT_S)  # ends the hour's wait at once
    assert (now.passes, later.passes) == (1, 0)


def test_wake_runs_a_pass_now():
    worker = Counting(interval_s=3600, name="wamgr-test-wake-pass")
    worker.start()
    try:
        worker.wake()
        assert worker.passed.acquire(timeout=WAIT_S)
        worker.wake()
        assert worker.passed.acquire(timeout=WAIT_S)
    finally:
        worker.stop(WAIT_S)
    assert worker.passes == 2
