"""The claim loop: connects what should be connected here and lets go of what should not.

Every ``claim_interval_s`` (and once at start-up, which is how sessions are restored after a
restart) it reads the tenants this instance may connect now (desired connected, lease free,
expired or ours, not parked for an operator) and connects those this process does not run
yet or holds in standby. It also runs a pass as soon as another instance frees leases (see
:mod:`wamgr.workers.lease_listener`), and right after the soonest lease of another instance
expires (a crashed holder's tenants are taken at their expiry, not up to an interval later).
Tenants that run here but are no longer wanted connected (a
``wamgr tenants remove`` from another process) are stopped.

With no connect rate, a pass works in batches: for each batch it reads the tenants' devices
and proxies and takes their leases in ONE statement (:meth:`LeaseStore.take_many`), and
hands each tenant what it needs with its ``Connect`` (:class:`~wamgr.actors.messages.Claimed`),
so a restore costs a few statements per batch instead of several per tenant. The tenant
judges the grant exactly as one it took itself, from the moment the batch's statement was
sent.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import pykka
from loguru import logger

from wamgr.actors.messages import Claimed, Connect
from wamgr.clock import Clock, SystemClock
from wamgr.errors import DatabaseUnavailable, WamgrError
from wamgr.status import TenantState
from wamgr.store.leases import LeaseStore
from wamgr.store.tenants import TenantStore
from wamgr.workers.periodic import PeriodicWorker

#: Local states in which a claimable tenant is (re)connected by the loop.
_RECLAIMABLE = frozenset({TenantState.STANDBY, TenantState.STOPPED})

#: Local states that count against the instance's capacity (they hold or want a socket).
_RUNNING = frozenset(
    {
        TenantState.CONNECTING,
        TenantState.PAIRING,
        TenantState.CONNECTED,
        TenantState.BACKOFF,
        TenantState.BANNED,
    }
)


#: Seconds after a lease's expiry at which the pass that takes it runs (the expiry is strict).
EXPIRY_MARGIN_S = 0.05
#: Tenants asked to connect in one round trip to the registry, with no connect rate set.
BATCH = 50


class Claimer(PeriodicWorker):
    """The claim loop: a periodic worker whose first pass (the restore) runs at once."""

    what = "claim pass"

    def __init__(
        self,
        tenants: TenantStore,
        owner: str,
        interval_s: float,
        claim: Callable[[str], pykka.Future],
        local_states: Callable[[], dict[str, TenantState]],
        release: Callable[[str], None],
        capacity: int | None = None,
        connect_rate: float | None = None,
        window: int = 8,
        call_timeout_s: float = 10.0,
        leases: LeaseStore | None = None,
        claim_many: Callable[[dict[str, Connect]], dict[str, pykka.Future]] | None = None,
        batch: int = BATCH,
        name: str = "wamgr-claimer",
        lease_ttl_s: float = 10.0,
        proxies: Callable[[list[str]], dict[str, str]] = lambda _ids: {},
        clock: Clock | None = None,
    ):
        super().__init__(interval_s, name, first_pass_now=True)
        self._lease_ttl_s = lease_ttl_s
        self._proxies = proxies
        self._clock = clock or SystemClock()
        self._tenants = tenants
        self._leases = leases
        self._claim_many = claim_many
        self._batch = max(1, batch)
        self._owner = owner
        self._claim = claim
        self._local_states = local_states
        self._release = release
        self._capacity = capacity
        self._window = max(1, window)
        self._call_timeout_s = call_timeout_s
        self._pause_s = 1.0 / connect_rate if connect_rate else 0.0

    def iterate(self) -> float:
        """A pass; the next one is due after the interval, or right after the soonest lease
        of another instance expires if that comes first (with ``leases``)."""
        due = super().iterate()
        if self._leases is not None:
            left = self._leases.next_expiry_elsewhere(self._owner)
            if left is not None:
                due = min(due, self.after(left + EXPIRY_MARGIN_S))
        return due

    def run_once(self) -> int:
        """One pass; returns how many tenants it asked to connect.

        With no connect rate, the tenants are asked in batches (their leases taken and their
        actors found or started in one round trip each, with ``claim_many``), and up to
        ``window`` batches are in flight at once. With a rate, one tenant at a time,
        ``1 / connect_rate`` apart, each taking its lease itself.
        """
        local = self._local_states()  # read before the store: see docs/architecture.md
        wanted = [
            tenant_id
            for tenant_id in self._tenants.claimable(self._owner)
            if tenant_id not in local or local[tenant_id] in _RECLAIMABLE
        ]
        if self._capacity is not None:
            room = self._capacity - sum(1 for state in local.values() if state in _RUNNING)
            wanted = wanted[: max(0, room)]
        if self._claim_many is not None and not self._pause_s:
            claimed = self._claim_in_batches(wanted)
        else:
            claimed = self._claim_one_by_one(wanted)
        desired = set(self._tenants.desired_connected())
        for tenant_id, state in local.items():
            if tenant_id not in desired and state is not TenantState.STOPPED:
                logger.bind(tenant=tenant_id).info("no longer wanted connected; stopping it")
                self._release(tenant_id)
        if claimed:
            logger.info("claimed {} tenants", claimed)
        return claimed

    def _claim_one_by_one(self, wanted: list[str]) -> int:
        claimed = 0
        in_flight: deque[tuple[str, pykka.Future]] = deque()
        for tenant_id in wanted:
            if self.stopping:
                break
            if claimed and self._pause_s and self.pause(self._pause_s):
                break
            in_flight.append((tenant_id, self._claim(tenant_id)))
            claimed += 1
            if len(in_flight) >= self._window:
                self._settle(*in_flight.popleft())
        while in_flight:
            self._settle(*in_flight.popleft())
        return claimed

    def _claim_in_batches(self, wanted: list[str]) -> int:
        assert self._claim_many is not None
        claimed = 0
        in_flight: deque[tuple[str, pykka.Future]] = deque()
        for first in range(0, len(wanted), self._batch):
            if self.stopping:
                break
            batch = wanted[first : first + self._batch]
            in_flight.extend(self._claim_many(self._prepare(batch)).items())
            claimed += len(batch)
            while len(in_flight) > self._window * self._batch:
                self._settle(*in_flight.popleft())
        while in_flight:
            self._settle(*in_flight.popleft())
        return claimed

    def _prepare(self, batch: list[str]) -> dict[str, Connect]:
        """Each tenant's Connect, with its device, proxy and lease read and taken for the
        whole batch; plain Connects (each tenant takes its own lease) if that failed."""
        if self._leases is None:
            return dict.fromkeys(batch, Connect())
        try:
            jids = self._tenants.jids(batch)  # read before the grant, as a tenant does
            proxies = self._proxies(batch)
            sent_at = self._clock.monotonic()  # a grant is judged from when it was sent
            taken = self._leases.take_many(batch, self._owner, self._lease_ttl_s)
        except DatabaseUnavailable as exc:
            logger.warning("batch claim of {} tenants failed: {}", len(batch), exc.detail)
            return dict.fromkeys(batch, Connect())
        return {
            tenant_id: Connect(
                Claimed(
                    sent_at,
                    taken.granted.get(tenant_id),
                    taken.held.get(tenant_id),
                    jids.get(tenant_id),
                    proxies.get(tenant_id),
                )
            )
            for tenant_id in batch
        }

    def _settle(self, tenant_id: str, future: pykka.Future) -> None:
        """Wait (bounded) for one claim; a failure is logged, the pass goes on."""
        try:
            future.get(timeout=self._call_timeout_s)
        except pykka.Timeout:
            logger.bind(tenant=tenant_id).warning(
                "claim not answered within {:g} s", self._call_timeout_s
            )
        except WamgrError as exc:
            logger.bind(tenant=tenant_id).warning("claim failed: {}", exc.format_message())
