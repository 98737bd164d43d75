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

import contextlib
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass

import pykka
from loguru import logger

from wamgr.actors.base import DispatchingActor
from wamgr.actors.messages import (
    AllStatuses,
    AllTenants,
    BeginShutdown,
    CancelWait,
    GetOrCreate,
    IsActive,
    Lookup,
    Shutdown,
    StatusChanged,
    StatusOf,
    WaitFor,
)
from wamgr.errors import ManagerStopped, WamgrError
from wamgr.status import TenantStatus

#: Starts the actor of a tenant, given its id and the registry's own ref.
TenantFactory = Callable[[str, pykka.ActorRef], pykka.ActorRef]

#: Called (on the registry's thread; must not block) with ``(new, old)`` on every change.
StatusListener = Callable[[TenantStatus, TenantStatus | None], None]

#: Leases released at once while a stop closes links: the first tenants are handed over
#: while the others still close.
RELEASE_BATCH = 500
#: Seconds a stop holds closed tenants' leases while more may close, before releasing them.
RELEASE_GATHER_S = 0.05
#: Seconds a stop step waits at least, even when its budget is spent.
MIN_WAIT_S = 0.1


@dataclass(frozen=True, slots=True)
class GetOrCreateMany:
    """Reply with the actors of ``tenant_ids`` (by id), starting those this process has none
    of (asked): one round trip for a claim loop's whole batch."""

    tenant_ids: tuple[str, ...]


class TenantTable:
    """The registry's table: each tenant's actor, last status, and whether its link is
    connected. Read from any thread without waiting.

    Two writers, each for its own part: a tenant's actor *shows* each new status here on its
    own thread before it tells the registry (so a ``status()`` right after a ``connect()``
    reads what the connect did, not the status before it), and the registry *records* the
    statuses it has handled (what it compares a change with). Readers see the shown status,
    or the recorded one of a tenant that never showed one. Every read is one atomic
    operation on a dict or set (the interpreter lock makes each one whole), so a reader sees
    a status either before or after a change, never half of one.
    """

    __slots__ = ("_active", "_refs", "_shown", "_shown_active", "_statuses")

    def __init__(self) -> None:
        self._refs: dict[str, pykka.ActorRef] = {}
        self._statuses: dict[str, TenantStatus] = {}
        self._active: set[str] = set()
        self._shown: dict[str, TenantStatus] = {}
        self._shown_active: set[str] = set()

    def ref(self, tenant_id: str) -> pykka.ActorRef | None:
        """The tenant's actor in this process, or None."""
        return self._refs.get(tenant_id)

    def status(self, tenant_id: str) -> TenantStatus | None:
        """The tenant's last status in this process, or None."""
        return self._shown.get(tenant_id) or self._statuses.get(tenant_id)

    def is_active(self, tenant_id: str) -> bool:
        """Whether the tenant's link in this process is connected."""
        if tenant_id in self._shown:
            return tenant_id in self._shown_active
        return tenant_id in self._active

    def statuses(self) -> list[TenantStatus]:
        """Every tenant's last status, ordered by id."""
        statuses = self._statuses.copy()  # one atomic copy each: no change can interleave
        statuses.update(self._shown.copy())
        return [statuses[t] for t in sorted(statuses)]

    def active(self) -> set[str]:
        """The tenants whose link in this process is connected (a copy, made in set
        operations: no loop over the tenants in Python)."""
        return (self._active - set(self._shown)) | self._shown_active.copy()

    def refs(self) -> dict[str, pykka.ActorRef]:
        """Every tenant's actor, by id (a copy)."""
        return self._refs.copy()

    # --- the writes ------------------------------------------------------------------------

    def show(self, status: TenantStatus, active: bool) -> None:
        """Show a tenant's new status to readers (its own actor's thread only, in order)."""
        if active:
            self._shown_active.add(status.tenant_id)
        else:
            self._shown_active.discard(status.tenant_id)
        self._shown[status.tenant_id] = status

    def add(self, tenant_id: str, ref: pykka.ActorRef) -> None:
        """Record the actor of a new tenant (the registry's thread only)."""
        self._refs[tenant_id] = ref

    def record(self, status: TenantStatus, active: bool) -> TenantStatus | None:
        """Record a tenant's new status; returns the one recorded before (the registry's
        thread only)."""
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
        GetOrCreateMany: "_on_get_or_create_many",
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

    def _on_get_or_create_many(self, message: GetOrCreateMany) -> dict[str, pykka.ActorRef]:
        return {t: self._on_get_or_create(GetOrCreate(t)) for t in message.tenant_ids}

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


@dataclass(frozen=True, slots=True)
class _ClosedNotice:
    """A stopping tenant's :class:`~wamgr.actors.messages.Notice`: puts its id in the stop's
    queue (one queue for all, not an Event per tenant)."""

    tenant_id: str
    closed: queue.SimpleQueue[str]

    def set(self) -> None:
        """The tenant's link is gone."""
        self.closed.put(self.tenant_id)


def shut_down_tenants(
    registry: pykka.ActorRef, release: Callable[[list[str]], object], budget_s: float
) -> None:
    """Stop every tenant of ``registry`` within ``budget_s`` seconds, then the registry.

    From the first step on the registry creates no tenant (a late claim or command fails).
    Every tenant is told to close its link without logout (they share the actor pool's
    threads, so telling all at once wakes no thread per tenant); the leases of those closed
    are given up with ``release(tenant_ids)`` as they close, :data:`RELEASE_BATCH` at most
    at a time, so other instances start taking the first over while the others still close.
    Links not closed when the budget is spent are not waited for.
    """
    end = time.monotonic() + budget_s

    def left() -> float:
        return max(MIN_WAIT_S, end - time.monotonic())

    try:
        by_id = registry.ask(BeginShutdown(), timeout=left())
    except (pykka.Timeout, pykka.ActorDeadError):
        by_id = {}
    notices: queue.SimpleQueue[str] = queue.SimpleQueue()
    told = 0
    for tenant_id, ref in by_id.items():
        with contextlib.suppress(pykka.ActorDeadError):
            ref.tell(Shutdown(_ClosedNotice(tenant_id, notices), stop=True))
            told += 1
    closed: list[str] = []
    settled = 0
    while settled < told:
        wait = min(RELEASE_GATHER_S, max(0.0, end - time.monotonic()))
        try:
            closed.append(notices.get(timeout=wait) if wait > 0 else notices.get_nowait())
        except queue.Empty:
            _release(release, closed)  # none closed meanwhile: release what is gathered
            closed = []
            if time.monotonic() >= end:  # a spent budget waits no more
                break
            continue
        settled += 1
        if len(closed) >= RELEASE_BATCH:
            _release(release, closed)
            closed = []
    _release(release, closed)
    late = told - settled
    if late:
        logger.warning(
            "{} links did not close within the stop budget; their leases expire by themselves",
            late,
        )
    for ref in by_id.values():  # those closed end by themselves
        if not ref.actor_stopped.wait(min(MIN_WAIT_S, max(0.0, end - time.monotonic()))):
            break
    stop_actors([r for r in by_id.values() if not r.actor_stopped.is_set()] + [registry], left())


def _release(release: Callable[[list[str]], object], closed: list[str]) -> None:
    if not closed:
        return
    try:
        release(closed)
    except WamgrError as exc:
        logger.warning("could not release leases (they expire by themselves): {}", exc)


def stop_actors(refs: list[pykka.ActorRef], budget_s: float) -> None:
    """Stop actors without blocking on each in turn, then wait for all within ``budget_s``."""
    end = time.monotonic() + budget_s
    for ref in refs:
        with contextlib.suppress(pykka.ActorDeadError):
            ref.stop(block=False)
    for ref in refs:
        ref.actor_stopped.wait(max(MIN_WAIT_S, end - time.monotonic()))
