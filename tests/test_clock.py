"""The clocks: the machine's, and the virtual one whose waiters wake on every advance."""

from __future__ import annotations

import random
import sys
import threading
import time
from datetime import UTC, datetime

import pytest

from wamgr.clock import SystemClock, VirtualClock, utc_from_timestamp

WAIT_S = 5.0


def wait_in_thread(clock, event: threading.Event, deadline: float | None) -> threading.Thread:
    """Start a thread that calls ``clock.wait_until(event, deadline)`` once."""
    thread = threading.Thread(target=clock.wait_until, args=(event, deadline), daemon=True)
    thread.start()
    return thread


# --- VirtualClock ------------------------------------------------------------------------------


def test_virtual_time_moves_only_when_advanced(clock: VirtualClock):
    mono, wall = clock.monotonic(), clock.time()
    assert (clock.monotonic(), clock.time()) == (mono, wall)
    clock.advance(90.5)
    assert (clock.monotonic(), clock.time()) == (mono + 90.5, wall + 90.5)
    assert utc_from_timestamp(clock.time()) == datetime(2026, 1, 1, 0, 1, 30, 500000, UTC)


def test_virtual_time_never_goes_back(clock: VirtualClock):
    before = clock.monotonic()
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance(-1.0)
    assert clock.monotonic() == before


def test_a_wait_whose_deadline_has_come_returns_at_once(clock: VirtualClock):
    event = threading.Event()
    assert clock.wait_until(event, clock.monotonic()) is False
    assert clock.wait_until(event, clock.monotonic() - 10) is False
    event.set()
    assert clock.wait_until(event, clock.monotonic()) is True


def test_a_set_event_ends_the_wait(clock: VirtualClock):
    event = threading.Event()
    waiter = wait_in_thread(clock, event, clock.monotonic() + 60)
    event.set()
    waiter.join(WAIT_S)
    assert not waiter.is_alive()


@pytest.mark.parametrize("deadline_in", [10.0, None], ids=["deadline", "no-deadline"])
def test_an_advance_short_of_the_deadline_wakes_the_waiter(clock: VirtualClock, deadline_in):
    """The waiter is woken to re-check its own state, long before its deadline."""
    event = threading.Event()
    deadline = None if deadline_in is None else clock.monotonic() + deadline_in
    start = clock.monotonic()
    waiter = wait_in_thread(clock, event, deadline)
    # An advance made before the thread began waiting is not one it waits for: step until
    # one lands while it waits.
    for _ in range(1000):
        clock.advance(0.001)
        waiter.join(0.005)
        if not waiter.is_alive():
            break
    assert not waiter.is_alive()
    assert clock.monotonic() - start < 1.0


def test_a_waiter_loop_on_an_absolute_deadline_ends_exactly_when_it_is_reached():
    """The loop every worker runs: wait, clear, re-check the clock against the due time."""
    clock = VirtualClock()
    due = clock.monotonic() + 10.0
    tick = threading.Event()
    wakes: list[float] = []
    done = threading.Event()

    def worker() -> None:
        while clock.monotonic() < due:
            clock.wait_until(tick, due)
            tick.clear()
            wakes.append(clock.monotonic())
        done.set()

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    for _ in range(9):
        clock.advance(1.0)
    assert not done.wait(0.05)  # 9 s of 10: still waiting
    clock.advance(1.0)
    assert done.wait(WAIT_S)
    thread.join(WAIT_S)
    assert wakes[-1] == due


@pytest.mark.parametrize("trials", [250, pytest.param(20_000, marks=pytest.mark.slow)])
def test_an_advance_racing_the_start_of_a_wait_is_never_lost(trials: int):
    """A wait that begins while another thread advances past its deadline returns: either it
    sees the new time before it blocks, or it is registered and the advance wakes it.

    Threads switch every microsecond here and the advance comes after a random spin, so it
    lands at every point of the waiter's first steps across the trials.
    """
    clock = VirtualClock()
    spins = random.Random(14)
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for trial in range(trials):
            due = clock.monotonic() + 1.0
            starting, returned = threading.Event(), threading.Event()

            def waiter(due: float = due, starting=starting, returned=returned) -> None:
                tick = threading.Event()
                starting.set()
                while clock.monotonic() < due:
                    clock.wait_until(tick, due)
                    tick.clear()
                returned.set()

            thread = threading.Thread(target=waiter, daemon=True)
            thread.start()
            assert starting.wait(WAIT_S)
            for _ in range(spins.randrange(300)):
                pass
            clock.advance(1.0)
            assert returned.wait(WAIT_S), f"trial {trial}: the wake-up was lost"
            thread.join(WAIT_S)
    finally:
        sys.setswitchinterval(switch_interval)


def test_advances_from_many_threads_add_up():
    clock = VirtualClock()
    start = clock.monotonic()
    threads = [
        threading.Thread(target=lambda: [clock.advance(0.25) for _ in range(200)]) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S)
    assert clock.monotonic() == start + 8 * 200 * 0.25


# --- SystemClock ----------------------------------------------------------------------------


def test_the_system_clock_is_the_machines():
    clock = SystemClock()
    before = time.monotonic()
    assert before <= clock.monotonic() <= time.monotonic()
    assert abs(clock.time() - time.time()) < 1.0


def test_the_system_clock_waits_until_the_deadline_or_the_event():
    clock = SystemClock()
    event = threading.Event()
    started = time.monotonic()
    assert clock.wait_until(event, started + 0.05) is False
    assert time.monotonic() - started >= 0.05
    assert clock.wait_until(event, started - 1.0) is False  # past: no wait at all
    event.set()
    assert clock.wait_until(event, None) is True
    assert clock.wait_until(event, time.monotonic() + 60) is True


def test_a_set_event_ends_a_system_clock_wait_early():
    clock = SystemClock()
    event = threading.Event()
    waiter = wait_in_thread(clock, event, time.monotonic() + 60)
    event.set()
    waiter.join(WAIT_S)
    assert not waiter.is_alive()


def test_utc_from_timestamp_is_aware_utc():
    moment = utc_from_timestamp(0.0)
    assert moment == datetime(1970, 1, 1, tzinfo=UTC)
    assert moment.utcoffset().total_seconds() == 0
