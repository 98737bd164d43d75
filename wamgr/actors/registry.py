"""RegistryActor: the only place tenant actors are created, and the table of their statuses.

Because every tenant actor comes from :class:`GetOrCreate` handled here, one at a time,
a process has exactly one actor per tenant. Once :class:`BeginShutdown` is handled, no new
one is created, so the set the stopping manager shuts down is every tenant there will be.
Tenants tell the registry every status change, so ``is_connection_active`` and ``status``
are answered from this table without asking the tenant: a busy tenant never slows a status
query.
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

    def __init__(self, make_tenant: TenantFactory, on_status: StatusListener | None = None):
        super().__init__()
        self._make_tenant = make_tenant
        self._on_status = on_status
        self._tenants: dict[str, pykka.ActorRef] = {}
        self._statuses: dict[str, TenantStatus] = {}
        self._active: set[str] = set()
        self._waiters: dict[str, list[WaitFor]] = {}
        self._shutting_down = False

    def _on_get_or_create(self, message: GetOrCreate) -> pykka.ActorRef:
        ref = self._tenants.get(message.tenant_id)
        if ref is None:
            if self._shutting_down:
                raise ManagerStopped()
            ref = self._make_tenant(message.tenant_id, self.actor_ref)
            self._tenants[message.tenant_id] = ref
        return ref

    def _on_lookup(self, message: Lookup) -> pykka.ActorRef | None:
        return self._tenants.get(message.tenant_id)

    def _on_is_active(self, message: IsActive) -> bool:
        return message.tenant_id in self._active

    def _on_status_of(self, message: StatusOf) -> TenantStatus | None:
        return self._statuses.get(message.tenant_id)

    def _on_all_statuses(self, _: AllStatuses) -> list[TenantStatus]:
        return [self._statuses[t] for t in sorted(self._statuses)]

    def _on_all_tenants(self, _: AllTenants) -> dict[str, pykka.ActorRef]:
        return dict(self._tenants)

    def _on_begin_shutdown(self, _: BeginShutdown) -> dict[str, pykka.ActorRef]:
        self._shutting_down = True
        return dict(self._tenants)

    def _on_status_changed(self, message: StatusChanged) -> None:
        status = message.status
        old = self._statuses.get(status.tenant_id)
        self._statuses[status.tenant_id] = status
        if message.active:
            self._active.add(status.tenant_id)
        else:
            self._active.discard(status.tenant_id)
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
        status = self._statuses.get(message.tenant_id)
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
