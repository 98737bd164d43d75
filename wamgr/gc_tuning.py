"""The interpreter's cycle collector, set for a process that holds thousands of tenants.

CPython's collector (thresholds 700 / 10 / 10) makes a full collection whenever the
objects that survived earlier ones have grown by a quarter. A full collection walks every
container object while it holds the interpreter lock, so no actor, worker or HTTP request
runs meanwhile. At 10,000 tenants (about 1.5 million objects) one took ~0.4 s. A restore
of 10,000 tenants ran nine of them, 3.4 s of its 8.3 s, and every call made during one
waited for it.

:func:`tune_gc` does two things. It freezes what exists when it is called: modules,
classes and configuration live as long as the process, so no collection walks them again.
It also collects less often. The young generation is collected after 50,000 new
containers, not 700. The older ones are collected after 20 and 100 collections of the
generation below, not 10 and 10. Cyclic garbage still goes, only in fewer, larger steps;
the young generation holds at most a few MiB more.

It acts on the whole process, so ``wamgr serve`` calls it at its start and a library
never does by itself. An application that embeds a manager with thousands of tenants can
call ``wamgr.tune_gc()`` once at its own start.
"""

from __future__ import annotations

import gc

#: The thresholds of the young, middle and old generation :func:`tune_gc` sets
#: (CPython's defaults: 700, 10, 10).
MANY_TENANTS_THRESHOLDS = (50_000, 20, 100)


def tune_gc(thresholds: tuple[int, int, int] = MANY_TENANTS_THRESHOLDS) -> int:
    """Collect once, freeze every object that exists now (no later collection walks it),
    and set the collector's ``thresholds``. Returns how many objects were frozen.

    Process-wide: call it once, early, in a process whose main job is wamgr. Raises
    ValueError for a threshold below 1 (0 would turn collection off, not tune it).
    """
    if len(thresholds) != 3 or any(t < 1 for t in thresholds):
        raise ValueError(f"thresholds must be three integers of at least 1, not {thresholds!r}")
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
    return gc.get_freeze_count()
