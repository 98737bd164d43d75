"""LeaseKeeper: renews every lease this process holds, and fences the ones it cannot.

Tenants tell the keeper when they take a lease (with the monotonic time at which they *sent*
the acquire) and when they give it up. Every ``renew_interval`` the keeper renews all held
leases in ONE statement, run on its own worker thread so a hanging database never stalls the
keeper; the same statement keeps this process's instance row alive (so it runs even when no
lease is held). If the row is no longer ours (another process was started with our instance
id after our claim had expired), every lease is fenced at once.

A lease is good until ``renew_deadline`` after the moment its last successful renewal (or
grant) was sent; ``renew_deadline < lease_ttl``, so a holder always gives up its socket
before any other instance may take the lease.

A lease is fenced when the renewal says it is gone, or when its deadline passes without a
renewal, whatever the reason: a slow or unreachable database, or this process having been
paused. Fencing trips the grant's :class:`~wamgr.actors.fence.LinkFence`, which closes the
tenant's link (without logout) from the keeper's own thread at once, even while the tenant's
actor is busy; then the tenant is told ``LeaseLost`` and goes to standby. The keeper itself
never waits on the database: renewals run on its worker thread.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pykka
from loguru import logger

from wamgr.actors.base import DispatchingActor
from wamgr.actors.fence import LinkFence
from wamgr.clock import Clock
from wamgr.config import Config
from wamgr.log_limits import RateLimitedLog
from wamgr.store.leases import LeaseStore
from wamgr.workers.lease_renewer import LeaseRenewer, Renewal
from wamgr.workers.scheduler import Scheduler

if TYPE_CHECKING:
    from wamgr.metrics import Metrics


@dataclass(frozen=True, slots=True)
class LeaseGranted:
    """A tenant took its lease; ``sent_at`` is the monotonic time the acquire was sent.

    ``fence`` closes the tenant's link if the lease is lost (see LinkFence).
    """

    tenant_id: str
    token: int
    tenant: pykka.ActorRef
    sent_at: float
    fence: LinkFence


@dataclass(frozen=True, slots=True)
class LeaseDropped:
    """A tenant gave its lease up (or lost it); stop renewing ``token``."""

    tenant_id: str
    token: int


@dataclass(frozen=True, slots=True)
class LeasesReleased:
    """A stop is releasing these tenants' leases (their links closed): stop renewing them.

    One message per release batch, instead of a :class:`LeaseDropped` from each of 10,000
    tenants (each a wake-up of the keeper's thread); sent before the release statement.
    """

    tenant_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LeaseLost:
    """Told to a tenant: the lease of ``token`` is no longer yours; close without logout."""

    token: int


@dataclass(frozen=True, slots=True)
class _Tick:
    """Time to renew (scheduled every renew_interval)."""


@dataclass(frozen=True, slots=True)
class _CheckDeadlines:
    """Time to fence the leases whose deadline has passed."""


@dataclass(frozen=True, slots=True)
class _Renewed:
    """The renewal sent at ``sent_at`` finished: ``renewed`` tenants, or ``error``;
    ``instance_held`` False: the instance id is another process's now."""

    sent_at: float
    tokens: dict[str, int]
    renewed: frozenset[str]
    error: str | None
    instance_held: bool = True


@dataclass(slots=True)
class _Held:
    token: int
    tenant: pykka.ActorRef
    good_until: float
    fence: LinkFence


class LeaseKeeper(DispatchingActor):
    """Keeps this process's leases alive; one per manager."""

    events = {
        LeaseGranted: "_on_granted",
        LeaseDropped: "_on_dropped",
        LeasesReleased: "_on_released",
        _Tick: "_on_tick",
        _CheckDeadlines: "_on_check_deadlines",
        _Renewed: "_on_renewed",
    }

    def __init__(
        self,
        config: Config,
        clock: Clock,
        scheduler: Scheduler,
        leases: LeaseStore,
        metrics: Metrics | None = None,
        on_instance_lost: Callable[[], None] | None = None,
    ):
        super().__init__()
        self._metrics = metrics
        self._on_instance_lost = on_instance_lost
        self._config = config
        self._clock = clock
        self._scheduler = scheduler
        self._leases = leases
        self._held: dict[str, _Held] = {}
        self._in_flight = False
        self._check_task: object | None = None
        self._check_at: float | None = None  # when the scheduled deadline check runs
        self._warnings = RateLimitedLog()
        self._renewer = LeaseRenewer(
            leases, config.instance_id, ttl_s=config.lease_ttl_s, clock=clock, report=self._renewed
        )

    def on_start(self) -> None:
        """Start the renewal worker and the renewal ticks."""
        self._renewer.start()
        self._schedule_tick()

    def on_stop(self) -> None:
        """End the renewal worker (a renewal under way finishes on its own)."""
        self._renewer.stop(2.0)

    # --- messages -----------------------------------------------------------------------

    def _on_granted(self, message: LeaseGranted) -> None:
        good_until = message.sent_at + self._config.renew_deadline_s
        self._held[message.tenant_id] = _Held(
            message.token, message.tenant, good_until, message.fence
        )
        if self._check_at is None or good_until < self._check_at:  # else one is due first
            self._schedule_check(good_until)

    def _on_dropped(self, message: LeaseDropped) -> None:
        held = self._held.get(message.tenant_id)
        if held is not None and held.token == message.token:
            del self._held[message.tenant_id]

    def _on_released(self, message: LeasesReleased) -> None:
        for tenant_id in message.tenant_ids:
            self._held.pop(tenant_id, None)

    def _on_tick(self, _: _Tick) -> None:
        self._schedule_tick()
        self._fence_overdue()
        if self._in_flight:
            return
        self._in_flight = True  # with no lease held, it still keeps the instance row alive
        self._renewer.renew({tenant: held.token for tenant, held in self._held.items()})

    def _on_renewed(self, message: _Renewed) -> None:
        self._in_flight = False
        if message.error is not None:
            self._warnings.warning(
                logger,
                "lease renewal failed ({}); {} leases fence at their deadline unless a renewal "
                "succeeds first",
                message.error,
                len(self._held),
            )
        elif not message.instance_held:
            self._warnings.error(
                logger,
                "instance id {} is no longer this process's: another process claimed it after "
                "this one's claim expired. Closing every link; this process takes no lease "
                "any more: stop it, or give it an instance id of its own",
                self._config.instance_id,
            )
            for tenant_id in list(self._held):
                self._fence(tenant_id, "the instance id is another process's now")
            if self._on_instance_lost is not None:
                on_lost, self._on_instance_lost = self._on_instance_lost, None  # once
                on_lost()
        else:
            self._warnings.recovered(logger, "lease renewals succeed again")
            good_until = message.sent_at + self._config.renew_deadline_s
            for tenant_id, token in message.tokens.items():
                held = self._held.get(tenant_id)
                if held is None or held.token != token:
                    continue  # dropped or re-granted meanwhile
                if tenant_id in message.renewed:
                    held.good_until = max(held.good_until, good_until)
                else:
                    self._fence(tenant_id, "another instance holds it now")
        self._fence_overdue()
        self._schedule_check()

    def _on_check_deadlines(self, _: _CheckDeadlines) -> None:
        self._check_task, self._check_at = None, None
        self._fence_overdue()
        self._schedule_check()

    # --- internals ----------------------------------------------------------------------

    def _fence_overdue(self) -> None:
        now = self._clock.monotonic()
        for tenant_id in [t for t, held in self._held.items() if held.good_until <= now]:
            self._fence(tenant_id, f"not renewed within {self._config.renew_deadline_s:g} s")

    def _fence(self, tenant_id: str, why: str) -> None:
        held = self._held.pop(tenant_id)
        logger.bind(tenant=tenant_id).warning("lease lost ({}): closing the link", why)
        held.fence.trip(why)  # the socket closes now, whatever the tenant's actor is doing
        _tell(held.tenant, LeaseLost(held.token))

    def _schedule_tick(self) -> None:
        me = self.actor_ref
        self._scheduler.schedule(self._config.renew_interval_s, lambda: _tell(me, _Tick()))

    def _schedule_check(self, earliest: float | None = None) -> None:
        """Check the deadlines at ``earliest`` (default: the soonest of every lease held; a
        grant passes its own, so a restore of N grants costs N steps, not N * N)."""
        if not self._held:
            return
        if self._check_task is not None:
            self._scheduler.cancel(self._check_task)  # type: ignore[arg-type]
        if earliest is None:
            earliest = min(held.good_until for held in self._held.values())
        self._check_at = earliest
        me = self.actor_ref
        self._check_task = self._scheduler.schedule(
            earliest - self._clock.monotonic(), lambda: _tell(me, _CheckDeadlines())
        )

    def _renewed(self, renewal: Renewal) -> None:
        """Runs on the renewer's thread: record the latency, tell the keeper the outcome."""
        if self._metrics is not None:
            self._metrics.lease_renewal(renewal.latency_s, renewal.error is None)
        _tell(
            self.actor_ref,
            _Renewed(
                renewal.sent_at,
                renewal.tokens,
                renewal.renewed,
                renewal.error,
                renewal.instance_held,
            ),
        )


def _tell(ref: pykka.ActorRef, message: object) -> None:
    # A stopped actor no longer needs the message (a stopped keeper renews nothing).
    with contextlib.suppress(pykka.ActorDeadError):
        ref.tell(message)
