"""PeriodicWorker: a worker that runs a pass every interval until stopped.

The claim loop and the sweeper are such workers. A pass that fails is logged (one line for
wamgr's own errors, a traceback for anything else) and the next one runs on schedule;
:meth:`~wamgr.workers.base.Worker.wake` runs the next pass at once, and ``stop`` ends the
wait at once instead of letting it run out.
"""

from __future__ import annotations

import threading

from loguru import logger

from wamgr.errors import WamgrError
from wamgr.workers.base import Worker


class PeriodicWorker(Worker):
    """Runs :meth:`run_once` every ``interval_s`` seconds on a thread named ``name``.

    With ``first_pass_now`` the first pass runs as soon as the thread starts; otherwise one
    interval later. Subclasses implement :meth:`run_once` and name what a pass does in
    ``what`` (for the log). The interval is real time (passes talk to the database, whose
    clock does not stop for a test's virtual one).
    """

    what = "pass"

    def __init__(self, interval_s: float, name: str, first_pass_now: bool = False):
        super().__init__(name)
        self._interval_s = interval_s
        self._first_pass_due = first_pass_now
        self._passed = threading.Event()  # set once a pass has run (or failed)

    def run_once(self) -> object:
        """One pass (subclasses implement it); its result is for tests."""
        raise NotImplementedError

    def wake(self) -> None:
        """Run a pass now (even the first, if it was to wait an interval)."""
        self._first_pass_due = True
        super().wake()

    def iterate(self) -> float:
        """Run a pass (the first one only if it is due at start); the next is one interval on."""
        if self._first_pass_due:
            self.run_once()
            self._passed.set()
        self._first_pass_due = True
        return self.after(self._interval_s)

    def wait_first_pass(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds until a first pass has run (or failed); returns
        whether one has. The claim loop's first pass is the restore, so this tells that
        everything claimable at start-up has been asked to connect."""
        return self._passed.wait(timeout)

    def on_failure(self, exc: Exception) -> float:
        """Log the failed pass; the next one comes one interval later."""
        self._passed.set()
        if isinstance(exc, WamgrError):
            logger.warning(
                "{} failed (next one in {:g} s): {}",
                self.what,
                self._interval_s,
                exc.format_message(),
            )
        else:
            logger.opt(exception=exc).error(
                "{} failed (next one in {:g} s)", self.what, self._interval_s
            )
        return self.after(self._interval_s)
