"""Writes tenant status changes to PostgreSQL off the actors' threads, in batches.

Tenant actors hand every status change to :meth:`StatusWriter.submit` and go on; one named
thread writes what has piled up in one transaction. Several changes of one tenant between two
writes collapse into the newest (with the oldest ``old_state`` kept for the history row), so a
burst of 10,000 tenants starting costs a handful of transactions, not 10,000.

With webhook endpoints, every state change (not only the newest of a burst) also becomes a
``session.status`` event, written to the outbox in the transaction of its status row.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from loguru import logger

from wamgr.errors import DatabaseUnavailable
from wamgr.status import TenantStatus
from wamgr.store.outbox import WebhookEvent
from wamgr.store.tenants import TenantStore
from wamgr.webhooks.events import status_event

#: Seconds to wait before retrying a batch the database refused.
RETRY_DELAY_S = 1.0
#: The most webhook events kept while the database refuses writes; older ones are dropped.
MAX_PENDING_EVENTS = 100_000


class StatusWriter:
    """A queue of status changes, coalesced per tenant, drained by one thread.

    ``writer`` is this instance's id: changes of tenants whose live lease another instance
    holds are not written (see :meth:`TenantStore.write_statuses`).
    """

    def __init__(
        self,
        tenants: TenantStore,
        writer: str,
        name: str = "wamgr-status-writer",
        *,
        endpoints: Sequence[str] = (),
        on_events_written: Callable[[], None] | None = None,
    ):
        self._tenants = tenants
        self._writer = writer
        self._endpoints = tuple(endpoints)
        self._on_events_written = on_events_written
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[TenantStatus, str | None]] = {}
        self._events: list[WebhookEvent] = []
        self._wakeup = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._stopping = False
        self._stop_requested = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, status: TenantStatus, old_state: str | None) -> None:
        """Queue ``status`` for writing; never blocks on the database."""
        event = None
        if self._endpoints and old_state != str(status.state):
            event = status_event(status, old_state)
        with self._lock:
            previous = self._pending.get(status.tenant_id)
            first_old = previous[1] if previous else old_state
            self._pending[status.tenant_id] = (status, first_old)
            if event is not None:
                self._events.append(event)
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
                events, self._events = self._events, []
                stopping = self._stopping
            if batch:
                self._write(batch, events, stopping)
            with self._lock:
                if not self._pending:
                    self._idle.set()
                if self._stopping and not self._pending:
                    return

    def _write(
        self,
        batch: list[tuple[TenantStatus, str | None]],
        events: list[WebhookEvent],
        stopping: bool,
    ) -> None:
        try:
            self._tenants.write_statuses(batch, self._writer, events, self._endpoints)
            if events and self._on_events_written is not None:
                self._on_events_written()
        except DatabaseUnavailable as exc:
            logger.warning("could not write {} status changes: {}", len(batch), exc.detail)
            if stopping:
                return
            with self._lock:
                for status, old in batch:  # put back unless a newer status arrived meanwhile
                    self._pending.setdefault(status.tenant_id, (status, old))
                self._events[:0] = events  # older than whatever arrived meanwhile
                if len(self._events) > MAX_PENDING_EVENTS:
                    dropped = len(self._events) - MAX_PENDING_EVENTS
                    del self._events[:dropped]
                    logger.warning("dropped {} webhook events the database refused", dropped)
            self._wakeup.set()
            self._stop_requested.wait(RETRY_DELAY_S)
        except Exception:
            logger.exception("status write failed; {} changes dropped", len(batch))
