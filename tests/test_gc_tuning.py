"""tune_gc: the collector set for many tenants, process-wide, and refused bad thresholds."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

import wamgr
from wamgr.gc_tuning import MANY_TENANTS_THRESHOLDS


@pytest.fixture
def restored_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_tune_gc_freezes_what_exists_and_collects_less_often(restored_gc, logs) -> None:
    survivor = [object()]  # a container that exists before: frozen with the rest

    frozen = wamgr.tune_gc()

    assert frozen == gc.get_freeze_count() > 0
    assert gc.get_threshold() == MANY_TENANTS_THRESHOLDS == (50_000, 20, 100)
    assert not any(survivor is o for o in gc.get_objects())  # no collection walks it now
    assert any(
        "garbage collector set for many tenants: thresholds 50000/20/100" in line for line in logs
    )


@pytest.mark.parametrize("thresholds", [(0, 10, 10), (700, 10), (700, 10, -1)])
def test_tune_gc_refuses_thresholds_that_would_not_tune_it(restored_gc, thresholds) -> None:
    before = gc.get_threshold()
    with pytest.raises(ValueError, match="three integers of at least 1"):
        wamgr.tune_gc(thresholds)
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
