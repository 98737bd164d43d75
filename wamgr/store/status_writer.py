"""Writes tenant status changes to PostgreSQL off the actors' threads, in batches.

Tenant actors hand every status change to :meth:`StatusWriter.submit` and go on; one named
thread writes what has piled up in one transaction. Several changes of one tenant between two
writes collapse into the newest (with the oldest ``old_state`` kept for the history row), so a
burst of 10,000 tenants starting costs a handful of transactions, not 10,000.
"""

from __future__ import annotations

import threading

from loguru import logger

from wamgr.errors import DatabaseUnavailable
from wamgr.status import TenantStatus
from wamgr.store.tenants import TenantStore

#: Seconds to wait before retrying a batch the database refused.
RETRY_DELAY_S = 1.0


class StatusWriter:
    """A queue of status changes, coalesced per tenant, drained by one thread.

    ``writer`` is this instance's id: changes of tenants whose live lease another instance
    holds are not written (see :meth:`TenantStore.write_statuses`).
    """

    def __init__(self, tenants: TenantStore, writer: str, name: str = "wamgr-status-writer"):
        self._tenants = tenants
        self._writer = writer
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[TenantStatus, str | None]] = {}
        self._wakeup = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._stopping = False
        self._stop_requested = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, status: TenantStatus, old_state: str | None) -> None:
        """Queue ``status`` for writing; never blocks on the database."""
        with self._lock:
            previous = self._pending.get(status.tenant_id)
            first_old = previous[1] if previous else old_state
            self._pending[status.tenant_id] = (status, first_old)
            self._idle.clear()
        self._wakeup.set()

    def flush(self, timeout: float) -> bool:
        """Wait until everything submitted so far is written; returns False on timeout."""
        self._wakeup.set()
        return self._idle.wait(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Write what is pending, then end the thread (waiting at most ``timeout`` seconds)."""
        with self._lock:
            self._stopping = True
        self._stop_requested.set()
        self._wakeup.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning("status writer did not finish within {:g} s", timeout)

    def _run(self) -> None:
        while True:
            self._wakeup.wait()
            with self._lock:
                self._wakeup.clear()
                batch = list(self._pending.values())
                self._pending.clear()
                stopping = self._stopping
            if batch:
                self._write(batch, stopping)
            with self._lock:
                if not self._pending:
                    self._idle.set()
                if self._stopping and not self._pending:
                    return

    def _write(self, batch: list[tuple[TenantStatus, str | None]], stopping: bool) -> None:
        try:
            self._tenants.write_statuses(batch, self._writer)
        except DatabaseUnavailable as exc:
            logger.warning("could not write {} status changes: {}", len(batch), exc.detail)
            if stopping:
                return
            with self._lock:
                for status, old in batch:  # put back unless a newer status arrived meanwhile
                    self._pending.setdefault(status.tenant_id, (status, old))
            self._wakeup.set()
            self._stop_requested.wait(RETRY_DELAY_S)
        except Exception:
            logger.exception("status write failed; {} changes dropped", len(batch))
