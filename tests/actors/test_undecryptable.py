"""The undecryptable-message counter: too many within the window means corrupted keys."""

from __future__ import annotations

from wamgr.actors.undecryptable import UndecryptableCounter


def test_trips_above_the_limit_within_the_window_then_counts_afresh():
    counter = UndecryptableCounter("t1", limit=2, window_s=10.0)
    assert [counter.too_many(t) for t in (0.0, 1.0, 11.5, 12.0)] == [False] * 4  # 0, 1 expired
    assert counter.too_many(12.5)  # three within ten seconds
    assert not counter.too_many(13.0)


def test_clear_forgets_what_was_counted():
    counter = UndecryptableCounter("t1", limit=1, window_s=10.0)
    counter.too_many(0.0)
    counter.clear()
    assert not counter.too_many(1.0)
