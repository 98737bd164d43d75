"""Notifications of status changes: every instance's status write tells every other one.

:meth:`~wamgr.store.tenants.TenantStore.write_statuses` ends with ``pg_notify`` on
:data:`CHANNEL`, in the transaction of the rows it wrote, so a listener hears of a change
exactly when it is committed, whichever instance wrote it. The payload is the ids of the
tenants written, separated by spaces (tenant ids hold none), or :data:`EVERYTHING` when they
would not fit in one notification (PostgreSQL takes at most 8000 bytes).

A :class:`StatusChannel` is a dedicated connection that LISTENs; the worker that holds one is
:mod:`wamgr.workers.status_feed`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from wamgr.store.listen import ListenChannel

#: The NOTIFY channel of status writes.
CHANNEL = "wamgr_status"
#: The payload that means "many tenants changed": read them all again.
EVERYTHING = "*"
#: The longest payload written (bytes); a longer list of ids is sent as EVERYTHING.
MAX_PAYLOAD_BYTES = 7900

#: SQL of the payload for the rows of a CTE ``upd(tenant_id)`` (an aggregate expression).
PAYLOAD_SQL = (
    f"CASE WHEN sum(octet_length(tenant_id) + 1) <= {MAX_PAYLOAD_BYTES}"
    f" THEN string_agg(tenant_id, ' ') ELSE '{EVERYTHING}' END"
)

#: A batch of changed tenant ids, or None for "any tenant may have changed".
Changed = frozenset[str] | None


def parse_payload(payload: str) -> Changed:
    """The tenant ids a notification names, or None if it means every tenant."""
    if payload == EVERYTHING:
        return None
    return frozenset(payload.split())


class StatusChannel(ListenChannel):
    """A dedicated connection that LISTENs for status writes (not from the pool: a LISTEN
    lives as long as its connection). Opening it raises DatabaseUnavailable if the database
    cannot be reached."""

    def __init__(self, database_url: str, *, connect_timeout_s: float):
        super().__init__(database_url, CHANNEL, connect_timeout_s=connect_timeout_s)

    def wait(
        self, timeout_s: float, settle_s: float, give_up: Callable[[], bool] = lambda: False
    ) -> Changed:
        """Wait at most ``timeout_s`` seconds for a status write; then gather those that
        follow within ``settle_s`` seconds, so a burst is one batch.

        Returns the ids written (empty if none came), or None if any batch meant every
        tenant. ``give_up()`` is asked at every notification and ends the wait when true.
        Raises DatabaseUnavailable if the connection broke (close it and open a new one).
        """
        changed: set[str] = set()
        everything = False
        deadline = None
        while True:
            left = timeout_s if deadline is None else deadline - time.monotonic()
            if left <= 0:
                break
            got = False
            for payload in self.payloads(left, stop_after=1):
                got = True
                ids = parse_payload(payload)
                if ids is None:
                    everything = True
                else:
                    changed |= ids
            if not got or give_up():
                break
            if deadline is None:
                deadline = time.monotonic() + settle_s
        return None if everything else frozenset(changed)
