"""tune_gc: the collector set for many tenants, process-wide, and refused bad thresholds
(tests/conftest.py puts the collector back as it was after each test)."""

from __future__ import annotations

import gc

import pytest

import wamgr
from wamgr.gc_tuning import MANY_TENANTS_THRESHOLDS


def test_tune_gc_freezes_what_exists_and_collects_less_often() -> None:
    survivor = [object()]  # a container that exists before: frozen with the rest

    frozen = wamgr.tune_gc()

    assert frozen > 1000 and gc.get_freeze_count() > 0  # the modules loaded, at least
    assert gc.get_threshold() == MANY_TENANTS_THRESHOLDS == (50_000, 20, 100)
    assert not any(survivor is o for o in gc.get_objects())  # no collection walks it now


@pytest.mark.parametrize("thresholds", [(0, 10, 10), (700, 10), (700, 10, -1)])
def test_tune_gc_refuses_thresholds_that_would_not_tune_it(thresholds) -> None:
    before = gc.get_threshold()
    with pytest.raises(ValueError, match="three integers of at least 1"):
        wamgr.tune_gc(thresholds)
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
