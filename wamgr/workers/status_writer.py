"""Writes tenant status changes to PostgreSQL off the actors' threads, in batches.

Tenant actors hand every status change to :meth:`StatusWriter.submit` and go on; one named
worker writes what has piled up in one transaction (the SQL is
:meth:`~wamgr.store.tenants.TenantStore.write_statuses`). Several changes of one tenant between two
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
from wamgr.log_limits import RateLimitedLog
from wamgr.status import TenantStatus
from wamgr.store.tenants import TenantStore
from wamgr.workers.base import AT_ONCE, Worker

#: Seconds to wait before retrying a batch the database refused.
RETRY_DELAY_S = 1.0
#: Seconds the worker rests after a write before it takes the next batch, so the changes of
#: a burst (a restore, a stop: thousands a second) gather into a few larger transactions
#: instead of one per wake-up. A lone change is written at once.
GATHER_S = 0.02
#: A status and the state before it.
_Change = tuple[TenantStatus, str | None]
#: The most webhook events kept while the database refuses writes; older ones are dropped.
MAX_PENDING_EVENTS = 100_000


class StatusWriter(Worker):
    """A queue of status changes, coalesced per tenant, drained by one worker.

    ``writer`` is this instance's id: changes of tenants whose live lease another instance
    holds are not written (see :meth:`TenantStore.write_statuses`). Changes submitted before
    :meth:`start` wait for it; :meth:`stop` writes what is pending once more, then ends.
    """

    what = "status write"

    def __init__(
        self,
        tenants: TenantStore,
        writer: str,
        name: str = "wamgr-status-writer",
        *,
        endpoints: Sequence[str] = (),
        on_events_written: Callable[[], None] | None = None,
    ):
        super().__init__(name)
        self._tenants = tenants
        self._writer = writer
        self._warnings = RateLimitedLog()  # an outage repeats the failure every retry
        self._endpoints = tuple(endpoints)
        self._on_events_written = on_events_written
        self._lock = threading.Lock()
        self._pending: dict[str, _Change] = {}
        self._events: list[_Change] = []  # every change of state, for session.status
        self._idle = threading.Event()
        self._idle.set()

    def submit(self, status: TenantStatus, old_state: str | None) -> None:
        """Queue ``status`` for writing; never blocks on the database."""
        with self._lock:
            previous = self._pending.get(status.tenant_id)
            first_old = previous[1] if previous else old_state
            self._pending[status.tenant_id] = (status, first_old)
            if old_state != str(status.state):  # for the global endpoints and tenants' own
                self._events.append((status, old_state))
            self._idle.clear()
        self.wake()

    def flush(self, timeout: float) -> bool:
        """Wait until everything submitted so far is written; returns False on timeout."""
        self.wake()
        return self._idle.wait(timeout)

    def iterate(self) -> float | None:
        """Write what is pending in one transaction; then rest :data:`GATHER_S` and wait
        for the next :meth:`submit`.

        A batch the database refused is put back and tried again after
        :data:`RETRY_DELAY_S` (submits in the meantime do not hurry it).
        """
        batch, events = self._take()
        if batch and not self._write(batch, events):
            self._put_back(batch, events)
            self.pause(RETRY_DELAY_S)
            return AT_ONCE
        self._mark_idle()
        if batch:
            self.pause(GATHER_S)  # more of a burst gathers meanwhile (a stop ends the rest)
        return None  # a submit since the write has set the wake event: no wait then

    def on_stop(self) -> None:
        """Write what is pending once more; a refusal now drops it (the database may be gone
        for good, and the next owner of each tenant writes its status anew)."""
        while True:
            batch, events = self._take()
            if not batch:
                break
            self._write(batch, events)
        self._mark_idle()

    def _take(self) -> tuple[list[_Change], list[_Change]]:
        with self._lock:
            batch = list(self._pending.values())
            self._pending.clear()
            events, self._events = self._events, []
        return batch, events

    def _mark_idle(self) -> None:
        with self._lock:
            if not self._pending:
                self._idle.set()

    def _write(self, batch: list[_Change], events: list[_Change]) -> bool:
        """Write ``batch`` and its webhook events; False if the database refused them.

        Any other failure is a bug: logged, and the batch dropped (retrying would not help).
        """
        try:
            self._tenants.write_statuses(batch, self._writer, events, self._endpoints)
            if events and self._on_events_written is not None:
                self._on_events_written()
        except DatabaseUnavailable as exc:
            self._warnings.warning(
                logger, "could not write {} status changes: {}", len(batch), exc.detail
            )
            return False
        except Exception:
            logger.exception("status write failed; {} changes dropped", len(batch))
        return True

    def _put_back(self, batch: list[_Change], events: list[_Change]) -> None:
        with self._lock:
            for status, old in batch:  # unless a newer status arrived meanwhile
                self._pending.setdefault(status.tenant_id, (status, old))
            self._events[:0] = events  # older than whatever arrived meanwhile
            if len(self._events) > MAX_PENDING_EVENTS:
                dropped = len(self._events) - MAX_PENDING_EVENTS
                del self._events[:dropped]
                logger.warning("dropped {} webhook events the database refused", dropped)
