"""The sweeper: keeps the processing-lock and inbound tables small.

One named thread per manager (``wamgr-sweeper``) that every ``sweep_interval_s`` deletes
processing locks whose claim expired and inbound message ids older than
``inbound_retention_s``. Sweeping is housekeeping only: an expired lock is taken over by the
next claim whether or not it was swept, so several instances sweeping the same database
(or none for a while) changes nothing but the table's size.
"""

from __future__ import annotations

from loguru import logger

from wamgr.store.inbound import InboundLog
from wamgr.store.locks import ProcessingLocks
from wamgr.workers.periodic import PeriodicWorker


class Sweeper(PeriodicWorker):
    """The sweeper: a periodic worker whose first sweep runs one interval after start."""

    what = "sweep"

    def __init__(
        self,
        locks: ProcessingLocks,
        inbound: InboundLog,
        interval_s: float,
        retention_s: float,
        name: str = "wamgr-sweeper",
    ):
        super().__init__(interval_s, name)
        self._locks = locks
        self._inbound = inbound
        self._retention_s = retention_s

    def run_once(self) -> tuple[int, int]:
        """One sweep; returns (expired locks deleted, inbound ids deleted)."""
        locks = self._locks.sweep()
        inbound = self._inbound.sweep(self._retention_s)
        if locks or inbound:
            logger.debug("swept {} expired processing locks, {} old inbound ids", locks, inbound)
        return locks, inbound
