"""RateLimitedLog: a warning that repeats is written once per interval, with a count of the
repeats held back, and once more when the trouble is over."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from loguru import logger

from wamgr.log_limits import RateLimitedLog


class SteppedClock:
    """Monotonic seconds that move only when the test says."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def lines() -> Iterator[list[str]]:
    written: list[str] = []
    sink = logger.add(
        lambda line: written.append(line.rstrip("\n")),
        format="{level} {function} {message}",
        level="DEBUG",
    )
    yield written
    logger.remove(sink)


def test_a_repeated_warning_is_written_once_per_interval_with_the_count(lines):
    clock = SteppedClock()
    warnings = RateLimitedLog(30.0, clock=clock)

    written = []
    for n in range(5):  # each line names its caller: this test function
        written.append(warnings.warning(logger, "db down: {}", n))
    clock.now += 29.9
    written.append(warnings.warning(logger, "db down: {}", 5))
    clock.now += 0.1
    written.append(warnings.warning(logger, "db down: {}", 6))

    assert written == [True, False, False, False, False, False, True]
    assert lines == [
        "WARNING test_a_repeated_warning_is_written_once_per_interval_with_the_count db down: 0",
        "WARNING test_a_repeated_warning_is_written_once_per_interval_with_the_count db down: 6 "
        "(5 more like it in the last 30 s)",
    ]


def test_each_message_has_its_own_window_and_errors_are_limited_too(lines):
    warnings = RateLimitedLog(30.0, clock=SteppedClock())

    warnings.warning(logger, "one")
    warnings.warning(logger, "two")
    warnings.error(logger, "three")
    warnings.error(logger, "three")

    assert [line.split(" ", 1)[0] for line in lines] == ["WARNING", "WARNING", "ERROR"]


def test_recovery_is_said_once_and_the_next_failure_is_written_at_once(lines):
    clock = SteppedClock()
    warnings = RateLimitedLog(30.0, clock=clock)

    assert not warnings.recovered(logger, "fine again")  # nothing was wrong
    warnings.warning(logger, "down")
    assert warnings.recovered(logger, "fine again")
    assert not warnings.recovered(logger, "fine again")
    assert warnings.warning(logger, "down")  # at once, although within 30 s

    assert [line.split(" ", 1)[0] for line in lines] == ["WARNING", "INFO", "WARNING"]
    assert lines[1].endswith(" fine again")
