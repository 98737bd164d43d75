"""Stopping what was started: newest first, every step within what is left of one budget.

A failing step is logged and the rest still run: a stop that gives up half-way leaves
threads and sockets behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from loguru import logger

#: Seconds a single stop step gets at least, even when the budget is spent.
MIN_STEP_S = 0.1


@dataclass
class StopSteps:
    """How to stop what has been started, newest first."""

    steps: list[tuple[str, Callable[[float], object]]] = field(default_factory=list)

    def push(self, what: str, stop: Callable[[float], object]) -> None:
        """Remember that ``stop(seconds_left)`` ends ``what``."""
        self.steps.append((what, stop))

    def run(self, budget_s: float) -> None:
        """Run every step, newest first, within ``budget_s`` seconds in all."""
        end = time.monotonic() + budget_s
        while self.steps:
            what, stop = self.steps.pop()
            try:
                stop(max(MIN_STEP_S, end - time.monotonic()))
            except Exception:
                logger.exception("stopping {} failed; going on with the rest", what)
