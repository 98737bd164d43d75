"""PeriodicWorker: one named thread that runs a pass every interval until stopped.

The claim loop and the sweeper are such workers. A pass that fails is logged (one line for
wamgr's own errors, a traceback for anything else) and the next one runs on schedule; the
thread ends within the stop timeout, waking at once instead of finishing its wait.
"""

from __future__ import annotations

import threading

from loguru import logger

from wamgr.errors import WamgrError


class PeriodicWorker:
    """Runs :meth:`run_once` every ``interval_s`` seconds on a thread named ``name``.

    With ``first_pass_now`` the first pass runs as soon as the thread starts; otherwise one
    interval later. Subclasses implement :meth:`run_once` and name what a pass does in
    ``what`` (for the log).
    """

    what = "pass"

    def __init__(self, interval_s: float, name: str, first_pass_now: bool = False):
        self._interval_s = interval_s
        self._first_pass_now = first_pass_now
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """End the thread, waiting at most ``timeout`` seconds for a pass under way."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning("{} did not finish within {:g} s", self._thread.name, timeout)

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called (a long pass should check it and end early)."""
        return self._stop.is_set()

    def pause(self, seconds: float) -> bool:
        """Wait ``seconds`` inside a pass; True if the worker was stopped meanwhile."""
        return self._stop.wait(seconds)

    def run_once(self) -> object:
        """One pass (subclasses implement it)."""
        raise NotImplementedError

    def _run(self) -> None:
        if not self._first_pass_now and self._stop.wait(self._interval_s):
            return
        while True:
            try:
                self.run_once()
            except WamgrError as exc:
                logger.warning(
                    "{} failed (next one in {:g} s): {}",
                    self.what,
                    self._interval_s,
                    exc.format_message(),
                )
            except Exception:
                logger.exception("{} failed (next one in {:g} s)", self.what, self._interval_s)
            if self._stop.wait(self._interval_s):
                return
