"""Send pacing, pure: the token bucket (a GCRA), the process-wide cap, jitter and typing."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wamgr.pacing import (
    TYPING_BASE_S,
    TYPING_MAX_S,
    TYPING_PER_CHAR_S,
    Gcra,
    Pacer,
    PacingSettings,
    typing_seconds,
)


def _send_all(pacer: Pacer, n: int, tenants: list[str], start: float = 0.0) -> list[float]:
    """Send ``n`` messages round-robin over ``tenants`` as soon as pacing lets each go (the
    sender's loop, on a stepped clock); returns the times they went."""
    now, times, i = start, [], 0
    while len(times) < n:
        tenant = tenants[i % len(tenants)]
        ready = max(pacer.ready_at(tenant, now), pacer.total_ready_at(now))
        now = max(now, ready)
        assert pacer.take(tenant, now)
        pacer.sent(tenant, now)
        times.append(now)
        i += 1
    return times


def test_100_messages_at_20_a_minute_go_burst_first_then_every_3_s() -> None:
    pacer = Pacer(PacingSettings(rate_per_min=20, burst=5))

    times = _send_all(pacer, 100, ["t1"])

    assert times[:5] == [0.0] * 5
    assert times[5:] == [3.0 * k for k in range(1, 96)]  # exact: no drift over 95 intervals
    assert times[-1] == 285.0 <= 300.0


def test_a_bucket_refills_while_idle_but_never_past_its_burst() -> None:
    bucket = Gcra(rate_per_min=60, burst=3)
    for _ in range(3):
        assert bucket.take(0.0)
    assert not bucket.take(0.0)
    assert bucket.ready_at(0.0) == 1.0

    later = 1000.0  # idle long enough for far more than 3 tokens
    assert [bucket.take(later) for _ in range(4)] == [True, True, True, False]


@given(
    rate=st.floats(0.5, 600),
    burst=st.integers(1, 20),
    gaps=st.lists(st.floats(0, 30), min_size=1, max_size=60),
)
def test_no_window_ever_holds_more_than_the_burst_plus_the_rate(rate, burst, gaps) -> None:
    bucket = Gcra(rate, burst)
    now, taken = 0.0, []
    for gap in gaps:
        now += gap
        while bucket.take(now):
            taken.append(now)
    interval = 60.0 / rate
    for i, start in enumerate(taken):
        window = [t for t in taken[i:] if t < start + 60.0]
        assert len(window) <= burst + 60.0 / interval + 1e-9


def test_no_rate_means_no_limit_and_tenants_do_not_share_buckets() -> None:
    unlimited = Pacer(PacingSettings(rate_per_min=None))
    assert _send_all(unlimited, 50, ["t1"]) == [0.0] * 50

    pacer = Pacer(PacingSettings(rate_per_min=1, burst=1))
    assert pacer.take("t1", 0.0)
    assert not pacer.take("t1", 0.0)
    assert pacer.take("t2", 0.0)  # its own bucket
    assert pacer.ready_at("t1", 0.0) == 60.0


def test_the_process_wide_cap_holds_over_all_tenants() -> None:
    pacer = Pacer(PacingSettings(rate_per_min=None, total_per_min=120))  # 2 a second, burst 2

    times = _send_all(pacer, 10, [f"t{i}" for i in range(10)])

    assert times == [0.0, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]


def test_a_refused_message_spends_no_token() -> None:
    pacer = Pacer(PacingSettings(rate_per_min=60, burst=1, total_per_min=60))
    assert pacer.take("t1", 0.0)
    assert not pacer.take("t2", 0.0)  # the cap refuses: t2's own token stays
    assert pacer.ready_at("t2", 0.0) == 0.0
    assert pacer.take("t2", 1.0)


@pytest.mark.parametrize("seed", range(20))
def test_jitter_adds_a_gap_within_its_bounds(seed: int) -> None:
    pacer = Pacer(PacingSettings(rate_per_min=None, jitter_s=4.0), rng=random.Random(seed))

    times = _send_all(pacer, 30, ["t1"])

    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(0.0 <= gap <= 4.0 for gap in gaps), gaps
    assert len(set(gaps)) > 1  # random, not a fixed delay


def test_jitter_comes_on_top_of_the_rate() -> None:
    pacer = Pacer(PacingSettings(rate_per_min=20, burst=1, jitter_s=2.0), rng=random.Random(1))

    times = _send_all(pacer, 20, ["t1"])

    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(3.0 <= gap <= 5.0 for gap in gaps), gaps


def test_typing_lasts_longer_for_longer_texts_up_to_a_bound() -> None:
    assert typing_seconds("") == TYPING_BASE_S
    assert typing_seconds("hello") == pytest.approx(TYPING_BASE_S + 5 * TYPING_PER_CHAR_S)
    assert typing_seconds("a" * 10) < typing_seconds("a" * 100)
    assert typing_seconds("a" * 100_000) == TYPING_MAX_S


def test_typing_is_tracked_per_message() -> None:
    pacer = Pacer(PacingSettings(rate_per_min=None, typing=True))
    assert pacer.typing_done_at("t1", "m1") is None

    done = pacer.start_typing("t1", "m1", "hello", now=10.0)

    assert done == 10.0 + typing_seconds("hello")
    assert pacer.typing_done_at("t1", "m1") == done
    assert pacer.typing_done_at("t1", "m2") is None  # another message: type again
    pacer.sent("t1", done)
    assert pacer.typing_done_at("t1", "m1") is None


def test_settings_say_whether_anything_is_paced() -> None:
    assert PacingSettings(rate_per_min=None).off
    assert not PacingSettings().off
    assert not PacingSettings(rate_per_min=None, typing=True).off
    with pytest.raises(ValueError):
        Gcra(0, 1)
