"""The sweeper: keeps the processing-lock and inbound tables small.

One named thread per manager (``wamgr-sweeper``) that every ``sweep_interval_s`` deletes
processing locks whose claim expired and inbound message ids older than
``inbound_retention_s``. Sweeping is housekeeping only: an expired lock is taken over by the
next claim whether or not it was swept, so several instances sweeping the same database
(or none for a while) changes nothing but the table's size.
"""

from __future__ import annotations

import threading

from loguru import logger

from wamgr.errors import WamgrError
from wamgr.store.inbound import InboundLog
from wamgr.store.locks import ProcessingLocks


class Sweeper:
    """A named thread running :meth:`run_once` every interval until stopped."""

    def __init__(
        self,
        locks: ProcessingLocks,
        inbound: InboundLog,
        interval_s: float,
        retention_s: float,
        name: str = "wamgr-sweeper",
    ):
        self._locks = locks
        self._inbound = inbound
        self._interval_s = interval_s
        self._retention_s = retention_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start the loop (the first sweep runs one interval from now)."""
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """End the loop, waiting at most ``timeout`` seconds for a sweep under way."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning("sweeper did not finish within {:g} s", timeout)

    def run_once(self) -> tuple[int, int]:
        """One sweep; returns (expired locks deleted, inbound ids deleted)."""
        locks = self._locks.sweep()
        inbound = self._inbound.sweep(self._retention_s)
        if locks or inbound:
            logger.debug("swept {} expired processing locks, {} old inbound ids", locks, inbound)
        return locks, inbound

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self.run_once()
            except WamgrError as exc:
                logger.warning("sweep failed (retried next interval): {}", exc.format_message())
            except Exception:
                logger.exception("sweep failed (retried next interval)")
