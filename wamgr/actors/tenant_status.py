"""The status a tenant shows, and where every change of it goes.

:class:`StatusBook` holds the fields of a tenant's :class:`~wamgr.status.TenantStatus` for its
actor and publishes each change twice, without waiting for either: to the registry (whose
table answers ``status`` and ``is_connection_active``) and to the status writer (which stores
it in batches, off the actor's thread).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pykka

from wamgr.actors.messages import StatusChanged
from wamgr.clock import Clock, utc_from_timestamp
from wamgr.status import TenantState, TenantStatus
from wamgr.workers.status_writer import StatusWriter


class StatusBook:
    """One tenant's shown status; used by its actor only."""

    __slots__ = (
        "_clock", "_id", "_instance_id", "_registry", "_show", "_writer",
        "attempt", "jid", "last_error", "next_retry_at", "owner", "state", "updated_at",
    )  # fmt: skip

    def __init__(
        self,
        tenant_id: str,
        instance_id: str,
        clock: Clock,
        registry: pykka.ActorRef,
        writer: StatusWriter,
        show: Callable[[TenantStatus, bool], None] = lambda _status, _active: None,
    ):
        self._id = tenant_id
        self._instance_id = instance_id
        self._clock = clock
        self._registry = registry
        self._writer = writer
        self._show = show
        self.state = TenantState.STOPPED
        self.jid: str | None = None
        self.owner: str | None = None
        self.attempt = 0
        self.next_retry_at: float | None = None  # epoch seconds
        self.last_error: str | None = None
        self.updated_at: float | None = None

    def change(
        self, state: TenantState, *, holding_lease: bool, active: bool, **changes: Any
    ) -> TenantState:
        """Enter ``state`` with ``changes`` (owner, attempt, next_retry_at, last_error);
        publish and store the result; returns the state before.

        Without an explicit ``owner``, the owner is this instance while it holds the lease,
        kept in standby (it names the holder), and nobody otherwise.
        """
        old = self.state
        self.state = state
        if "owner" in changes:
            self.owner = changes["owner"]
        elif holding_lease:
            self.owner = self._instance_id
        elif state is not TenantState.STANDBY:
            self.owner = None
        if "attempt" in changes:
            self.attempt = changes["attempt"]
        if "next_retry_at" in changes:
            self.next_retry_at = changes["next_retry_at"]
        if "last_error" in changes:
            self.last_error = changes["last_error"]
        self.updated_at = self._clock.time()
        status = self.publish(active)
        self._writer.submit(status, str(old))
        return old

    def publish(self, active: bool) -> TenantStatus:
        """Tell the registry the current status (``active``: the link is connected)."""
        status = self.snapshot()
        self._show(status, active)  # readers see it at once, the registry when it gets to it
        with contextlib.suppress(pykka.ActorDeadError):  # the process is stopping
            self._registry.tell(StatusChanged(status, active))
        return status

    def snapshot(self) -> TenantStatus:
        """The current status."""
        return TenantStatus(
            tenant_id=self._id,
            state=self.state,
            jid=self.jid,
            owner=self.owner,
            attempt=self.attempt,
            next_retry_at=(
                utc_from_timestamp(self.next_retry_at) if self.next_retry_at is not None else None
            ),
            last_error=self.last_error,
            updated_at=utc_from_timestamp(self.updated_at) if self.updated_at else None,
        )
