"""LocalTenants: blocking calls into this process's tenant actors, each within a deadline.

The facade, the claim loop and the command router all reach the tenant actors the same way:
find the tenant's actor, then ask it, both within one call's time budget. A tenant that runs
here already is found in the registry's :class:`~wamgr.actors.registry.TenantTable`, read
without a round trip to the registry's thread (so are statuses); only a new one is asked of
the registry, which creates it. A timeout becomes :class:`OperationTimeout`, a stopped actor
:class:`ManagerStopped`. These calls block, so they run only on the facade's, the claimer's
and the listener's threads, never on an actor's.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pykka

from wamgr.actors import messages as m
from wamgr.actors.registry import GetOrCreateMany, TenantTable
from wamgr.clock import Clock
from wamgr.errors import ManagerStopped, OperationTimeout
from wamgr.status import TenantState, TenantStatus
from wamgr.store.connect_grant import ConnectGrants


class Deadline:
    """Seconds left of one call's timeout; ``left()`` raises OperationTimeout once spent."""

    def __init__(self, what: str, timeout: float):
        self.what = what
        self.timeout = timeout
        self._end = time.monotonic() + timeout

    def left(self) -> float:
        """Seconds left (> 0), or OperationTimeout naming the call."""
        left = self._end - time.monotonic()
        if left <= 0:
            raise OperationTimeout(self.what, self.timeout)
        return left


def ask(ref: pykka.ActorRef, message: object, deadline: Deadline) -> Any:
    """Ask ``ref`` and wait for the reply within ``deadline``; the actor's exception re-raised."""
    try:
        return ref.ask(message, block=False).get(timeout=deadline.left())
    except pykka.Timeout:
        raise OperationTimeout(deadline.what, deadline.timeout) from None
    except pykka.ActorDeadError:
        raise ManagerStopped() from None


class LocalTenants:
    """The tenant actors of one manager: its registry, and the registry's table."""

    def __init__(
        self,
        registry: pykka.ActorRef,
        call_timeout_s: float,
        table: TenantTable,
        grants: ConnectGrants,
        clock: Clock,
    ):
        self.registry = registry
        self.table = table
        self._call_timeout_s = call_timeout_s
        self._grants = grants
        self._clock = clock

    def deadline(self, what: str, timeout: float | None = None) -> Deadline:
        """A deadline of ``timeout`` seconds (the configured call timeout if None)."""
        return Deadline(what, self._call_timeout_s if timeout is None else timeout)

    def get_or_create(self, tenant_id: str, deadline: Deadline) -> pykka.ActorRef:
        """The tenant's actor, started (by the registry) if this process has none yet."""
        ref = self.table.ref(tenant_id)
        if ref is not None:
            return ref
        return ask(self.registry, m.GetOrCreate(tenant_id), deadline)

    def lookup(self, tenant_id: str, deadline: Deadline) -> pykka.ActorRef | None:
        """The tenant's actor, or None if this process does not run it."""
        deadline.left()
        return self.table.ref(tenant_id)

    def statuses(self, deadline: Deadline) -> list[TenantStatus]:
        """The live status of every tenant this process runs, ordered by id."""
        deadline.left()
        return self.table.statuses()

    def states(self) -> dict[str, TenantState]:
        """Tenant id -> local state, for every tenant this process runs."""
        return {s.tenant_id: s.state for s in self.table.statuses()}

    def connect(self, tenant_id: str, deadline: Deadline) -> TenantStatus:
        """The application's connect: the tenant recorded wanted connected, its device and
        proxy read and its lease taken in ONE statement (:class:`ConnectGrants`), then its
        actor asked to connect with them. A grant the actor never got is given back. A
        tenant connected here already needs only its wish recorded (no grant, no reads)."""
        ref = self.table.ref(tenant_id)
        if ref is not None and self.table.is_active(tenant_id):
            self._grants.want_only(tenant_id)
            return ask(ref, m.Connect(manual=True), deadline)
        sent_at = self._clock.monotonic()  # a grant is judged from when it was sent
        wanted = self._grants.want(tenant_id)
        grant = wanted.batch.granted.get(tenant_id)
        held_by = wanted.batch.held.get(tenant_id)
        claimed = m.Claimed(sent_at, grant, held_by, wanted.jid, wanted.proxy)
        try:
            ref = self.get_or_create(tenant_id, deadline)
        except (OperationTimeout, ManagerStopped):
            if grant is not None:
                self._grants.give_back(tenant_id, grant)
            raise
        return ask(ref, m.Connect(claimed, manual=True), deadline)

    def connect_later(self, tenant_id: str) -> pykka.Future:
        """Ask the tenant to connect without waiting for its answer (the claim loop's way)."""
        ref = self.get_or_create(tenant_id, self.deadline(f"claim({tenant_id!r})"))
        return ref.ask(m.Connect(), block=False)

    def connect_many_later(self, connects: dict[str, m.Connect]) -> dict[str, pykka.Future]:
        """Send each tenant its Connect without waiting for the answers; their actors are
        found or started in ONE round trip to the registry (the claim loop's restore). If
        that fails, every grant in ``connects`` is left to expire by itself."""
        deadline = self.deadline(f"claim of {len(connects)} tenants")
        refs = ask(self.registry, GetOrCreateMany(tuple(connects)), deadline)
        return {t: ref.ask(connects[t], block=False) for t, ref in refs.items()}

    def stop_later(self, tenant_id: str, do_logout: bool = False) -> None:
        """Ask a local tenant to stop (closing its link); returns before the link is gone."""
        deadline = self.deadline(f"stop({tenant_id!r})")
        ref = self.lookup(tenant_id, deadline)
        if ref is not None:
            ask(ref, m.Remove(do_logout, threading.Event()), deadline)
