"""StopSignals: the first SIGTERM/SIGINT starts a graceful stop that a budget or a second
signal cuts short, whichever thread the kernel hands the signal to.

The signals are real (sent to this process); the forced exit is a recorder, not os._exit.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator

import pytest

from wamgr.cli.signals import FORCED_EXIT_BASE, StopSignals

#: Seconds any step here may take; every wait in these tests is bounded by it.
STEP_S = 5.0


class ForcedExit:
    """Records the exit code StopSignals would have ended the process with."""

    def __init__(self) -> None:
        self.codes: list[int] = []
        self.called = threading.Event()

    def __call__(self, code: int) -> None:
        self.codes.append(code)
        self.called.set()


@pytest.fixture
def forced() -> ForcedExit:
    return ForcedExit()


@pytest.fixture
def blocked_thread() -> Iterator[tuple[threading.Thread, threading.Event]]:
    """A non-daemon thread that runs until its event is set (set and joined afterwards)."""
    release = threading.Event()
    thread = threading.Thread(target=release.wait, args=(STEP_S * 4,), name="test-blocked")
    thread.start()
    yield thread, release
    release.set()
    thread.join(STEP_S)


def test_wait_returns_the_first_signal_and_a_prompt_stop_is_not_forced(
    forced: ForcedExit,
) -> None:
    with StopSignals(budget_s=STEP_S, exit=forced) as signals:
        assert signals.wait(timeout=0.05) is None
        assert not signals.requested
        os.kill(os.getpid(), signal.SIGTERM)

        assert signals.wait(timeout=STEP_S) is signal.SIGTERM
        assert signals.requested
    assert not forced.called.wait(0.2)
    assert forced.codes == []


@pytest.mark.slow
def test_a_signal_delivered_to_another_thread_wakes_the_waiting_main_thread(
    forced: ForcedExit, blocked_thread: tuple[threading.Thread, threading.Event]
) -> None:
    # What SIGSTOP + SIGCONT + SIGTERM did to serve: the kernel handed SIGTERM to a thread
    # other than the main one, which slept in an untimed wait and never ran the handler.
    thread, _ = blocked_thread
    assert thread.ident is not None
    with StopSignals(budget_s=STEP_S, exit=forced) as signals:
        signal.pthread_kill(thread.ident, signal.SIGTERM)

        assert signals.wait(timeout=STEP_S) is signal.SIGTERM
    assert forced.codes == []


def test_a_second_signal_forces_the_exit_at_once(forced: ForcedExit) -> None:
    with StopSignals(budget_s=60.0, exit=forced) as signals:
        os.kill(os.getpid(), signal.SIGINT)
        assert signals.wait(timeout=STEP_S) is signal.SIGINT
        os.kill(os.getpid(), signal.SIGTERM)

        assert forced.called.wait(STEP_S)  # long before the budget of 60 s
    assert forced.codes == [FORCED_EXIT_BASE + signal.SIGINT]  # 130, as a shell reports


@pytest.mark.slow
def test_a_graceful_stop_past_its_budget_forces_the_exit(forced: ForcedExit) -> None:
    with StopSignals(budget_s=0.3, exit=forced) as signals:
        os.kill(os.getpid(), signal.SIGTERM)
        assert signals.wait(timeout=STEP_S) is signal.SIGTERM

        assert forced.called.wait(STEP_S)  # the block is still running: the stop hangs
    assert forced.codes == [FORCED_EXIT_BASE + signal.SIGTERM]


@pytest.mark.slow
def test_threads_still_running_after_the_stop_are_held_to_the_budget(
    forced: ForcedExit, blocked_thread: tuple[threading.Thread, threading.Event]
) -> None:
    # The interpreter waits for non-daemon threads before the process exits: leaving the
    # block in time is not enough while one of them hangs.
    with StopSignals(budget_s=0.5, exit=forced) as signals:
        os.kill(os.getpid(), signal.SIGTERM)
        assert signals.wait(timeout=STEP_S) is signal.SIGTERM

    assert forced.called.wait(STEP_S)
    assert forced.codes == [FORCED_EXIT_BASE + signal.SIGTERM]


def test_leaving_restores_the_previous_handlers_and_wakeup_fd(forced: ForcedExit) -> None:
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}

    with StopSignals(budget_s=STEP_S, exit=forced, name="test-signals") as signals:
        assert signal.getsignal(signal.SIGTERM) is not before[signal.SIGTERM]
    watchers = [t for t in threading.enumerate() if t.name == "test-signals"]

    assert {signum: signal.getsignal(signum) for signum in before} == before
    previous_fd = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(previous_fd)
    assert previous_fd == -1
    assert watchers == []  # the watcher ended with the block
    assert not signals.requested and forced.codes == []
