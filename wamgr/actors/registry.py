"""RegistryActor: the only place tenant actors are created, and the table of their statuses.

Because every tenant actor comes from :class:`GetOrCreate` handled here, one at a time,
a process has exactly one actor per tenant. Once :class:`BeginShutdown` is handled, no new
one is created, so the set the stopping manager shuts down is every tenant there will be.
Tenants tell the registry every status change, so ``is_connection_active`` and ``status``
are answered from this table without asking the tenant: a busy tenant never slows a status
query.

The registry is the one writer of its :class:`TenantTable`; any thread reads it without a
round trip to the registry's thread (a query never waits behind a burst of status changes).
"""

from __future__ import annotations

from collections.abc import Callable

import pykka

from wamgr.actors.base import DispatchingActor
from wamgr.actors.messages import (
    AllStatuses,
    AllTenants,
    BeginShutdown,
    CancelWait,
    GetOrCreate,
    IsActive,
    Lookup,
    StatusChanged,
    StatusOf,
    WaitFor,
)
from wamgr.errors import ManagerStopped
from wamgr.status import TenantStatus

#: Starts the actor of a tenant, given its id and the registry's own ref.
TenantFactory = Callable[[str, pykka.ActorRef], pykka.ActorRef]

#: Called (on the registry's thread; must not block) with ``(new, old)`` on every change.
StatusListener = Callable[[TenantStatus, TenantStatus | None], None]


class TenantTable:
    """The registry's table: each tenant's actor, last status, and whether its link is
    connected. Written only on the registry's thread; read from any thread.

    Every read is one atomic operation on a dict or set (the interpreter lock makes each
    one whole), so a reader sees a status either before or after a change, never half of
    one, and never waits.
    """

    __slots__ = ("_active", "_refs", "_statuses")

    def __init__(self) -> None:
        self._refs: dict[str, pykka.ActorRef] = {}
        self._statuses: dict[str, TenantStatus] = {}
        self._active: set[str] = set()

    def ref(self, tenant_id: str) -> pykka.ActorRef | None:
        """The tenant's actor in this process, or None."""
        return self._refs.get(tenant_id)

    def status(self, tenant_id: str) -> TenantStatus | None:
        """The tenant's last status in this process, or None."""
        return self._statuses.get(tenant_id)

    def is_active(self, tenant_id: str) -> bool:
        """Whether the tenant's link in this process is connected."""
        return tenant_id in self._active

    def statuses(self) -> list[TenantStatus]:
        """Every tenant's last status, ordered by id."""
        statuses = self._statuses.copy()  # one atomic copy: no change can interleave
        return [statuses[t] for t in sorted(statuses)]

    def refs(self) -> dict[str, pykka.ActorRef]:
        """Every tenant's actor, by id (a copy)."""
        return self._refs.copy()

    # --- the registry's writes ----------------------------------------------------------

    def add(self, tenant_id: str, ref: pykka.ActorRef) -> None:
        """Record the actor of a new tenant (the registry's thread only)."""
        self._refs[tenant_id] = ref

    def record(self, status: TenantStatus, active: bool) -> TenantStatus | None:
        """Record a tenant's new status; returns the one before (the registry's thread only)."""
        old = self._statuses.get(status.tenant_id)
        self._statuses[status.tenant_id] = status
        if active:
            self._active.add(status.tenant_id)
        else:
            self._active.discard(status.tenant_id)
        return old


class RegistryActor(DispatchingActor):
    """Owns the tenant actors of one process and the last status of each."""

    commands = {
        GetOrCreate: "_on_get_or_create",
        Lookup: "_on_lookup",
        IsActive: "_on_is_active",
        StatusOf: "_on_status_of",
        AllStatuses: "_on_all_statuses",
        AllTenants: "_on_all_tenants",
        BeginShutdown: "_on_begin_shutdown",
    }
    events = {
        StatusChanged: "_on_status_changed",
        WaitFor: "_on_wait_for",
        CancelWait: "_on_cancel_wait",
    }

    def __init__(
        self,
        make_tenant: TenantFactory,
        on_status: StatusListener | None = None,
        table: TenantTable | None = None,
    ):
        super().__init__()
        self._make_tenant = make_tenant
        self._on_status = on_status
        self._table = table if table is not None else TenantTable()
        self._waiters: dict[str, list[WaitFor]] = {}
        self._shutting_down = False

    def _on_get_or_create(self, message: GetOrCreate) -> pykka.ActorRef:
        ref = self._table.ref(message.tenant_id)
        if ref is None:
            if self._shutting_down:
                raise ManagerStopped()
            ref = self._make_tenant(message.tenant_id, self.actor_ref)
            self._table.add(message.tenant_id, ref)
        return ref

    def _on_lookup(self, message: Lookup) -> pykka.ActorRef | None:
        return self._table.ref(message.tenant_id)

    def _on_is_active(self, message: IsActive) -> bool:
        return self._table.is_active(message.tenant_id)

    def _on_status_of(self, message: StatusOf) -> TenantStatus | None:
        return self._table.status(message.tenant_id)

    def _on_all_statuses(self, _: AllStatuses) -> list[TenantStatus]:
        return self._table.statuses()

    def _on_all_tenants(self, _: AllTenants) -> dict[str, pykka.ActorRef]:
        return self._table.refs()

    def _on_begin_shutdown(self, _: BeginShutdown) -> dict[str, pykka.ActorRef]:
        self._shutting_down = True
        return self._table.refs()

    def _on_status_changed(self, message: StatusChanged) -> None:
        status = message.status
        old = self._table.record(status, message.active)  # readers see it before waiters wake
        waiters = self._waiters.get(status.tenant_id)
        if waiters:
            still = [w for w in waiters if not _settle(w, status)]
            if still:
                self._waiters[status.tenant_id] = still
            else:
                del self._waiters[status.tenant_id]
        if self._on_status is not None and (old is None or old.state is not status.state):
            self._on_status(status, old)

    def _on_wait_for(self, message: WaitFor) -> None:
        status = self._table.status(message.tenant_id)
        if status is not None and _settle(message, status):
            return
        self._waiters.setdefault(message.tenant_id, []).append(message)

    def _on_cancel_wait(self, message: CancelWait) -> None:
        waiters = self._waiters.get(message.waiter.tenant_id, [])
        if message.waiter in waiters:
            waiters.remove(message.waiter)


def _settle(waiter: WaitFor, status: TenantStatus) -> bool:
    if status.state in waiter.states:
        waiter.result.append(status)
        waiter.event.set()
        return True
    return False
