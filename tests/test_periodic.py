"""PeriodicWorker: passes on schedule, failures contained, stop is prompt."""

from __future__ import annotations

import threading
import time

from wamgr.errors import DatabaseUnavailable
from wamgr.periodic import PeriodicWorker


class Counting(PeriodicWorker):
    def __init__(self, fail_first: int, **kwargs):
        super().__init__(**kwargs)
        self.passes = 0
        self.fail_first = fail_first
        self.third = threading.Event()

    def run_once(self) -> None:
        self.passes += 1
        if self.passes >= 3:
            self.third.set()
        if self.passes == 1 and self.fail_first == 1:
            raise DatabaseUnavailable("down for a moment")
        if self.passes == 2 and self.fail_first:
            raise RuntimeError("a bug in one pass")


def test_failing_passes_do_not_stop_the_loop():
    worker = Counting(fail_first=1, interval_s=0.01, name="wamgr-test-periodic")
    worker.start()
    try:
        assert worker.third.wait(5)
    finally:
        worker.stop(2)
    assert not any(t.name == "wamgr-test-periodic" for t in threading.enumerate())


def test_first_pass_waits_an_interval_unless_asked_not_to():
    later = Counting(fail_first=0, interval_s=3600, name="wamgr-test-later")
    now = Counting(fail_first=0, interval_s=3600, name="wamgr-test-now", first_pass_now=True)
    later.start()
    now.start()
    deadline = time.monotonic() + 5
    while now.passes == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    later.stop(2)
    now.stop(2)
    assert time.monotonic() - started < 1.0  # stop wakes the wait at once
    assert (now.passes, later.passes) == (1, 0)
