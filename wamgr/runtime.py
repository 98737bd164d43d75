"""Runtime: builds every component of a started manager, and stops them in one written order.

:meth:`Runtime.start` builds the components bottom-up (database, stores, transport, the
threads and actors that use them, then the loops that bring work in) and records, for each
one it started, how to stop it. :meth:`Runtime.stop` runs those steps in reverse, within ONE
time budget, so each component outlives everything that uses it: nothing new comes in
first, then the links close and their leases go back, then the actors and threads they
talked to end, and the database goes last. A step that fails is logged and the next one
still runs. A start that fails half-way stops what it had started.

A start can be cancelled: every step, once started, asks ``cancelled()`` (a stop requested
meanwhile, or a signal); if it says yes, what was started is stopped and
:class:`~wamgr.errors.StartCancelled` is raised, before the claim loop could take a tenant.

A database that is gone must not hold the stop up: before the first step, the stop pings
it (:data:`~wamgr.store.db.PING_TIMEOUT_S`), and from then on every wait for a connection
lasts at most :data:`DB_STOP_WAIT_S` while the database is failing, and the workers that
only wait on it are given at most that to end.

The start order below is therefore also the stop order read backwards; the comment at each
step says why it sits where it does.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import pykka
from loguru import logger

from wamgr.actors.leases import LeaseKeeper, LeasesReleased
from wamgr.actors.pool import ActorPool
from wamgr.actors.registry import (
    RegistryActor,
    TenantTable,
    shut_down_tenants,
    stop_actors,
)
from wamgr.actors.supervisor import SupervisorActor
from wamgr.actors.tenant import TenantActor, TenantServices
from wamgr.clock import Clock
from wamgr.config import Config
from wamgr.errors import DatabaseUnavailable, StartCancelled, WamgrError
from wamgr.events import StatusEvent
from wamgr.inbound import InboundPipeline
from wamgr.local_tenants import LocalTenants
from wamgr.metrics import Metrics
from wamgr.outbound import OutboundQueue
from wamgr.routing import CommandRouter
from wamgr.status import TenantStatus
from wamgr.stop_steps import StopSteps
from wamgr.store.calls import CallStore
from wamgr.store.commands import CommandStore
from wamgr.store.connect_grant import ConnectGrants
from wamgr.store.dashboard import DashboardStore
from wamgr.store.db import Database, SessionLimits, open_database
from wamgr.store.inbound import InboundLog
from wamgr.store.instances import InstanceClaim, InstanceStore
from wamgr.store.leases import RELEASE_WITHIN_S, LeaseStore
from wamgr.store.locks import ProcessingLocks
from wamgr.store.outbound import OutboundStore
from wamgr.store.outbox import Outbox
from wamgr.store.tenant_settings import TenantSettingsStore
from wamgr.store.tenants import TenantStore
from wamgr.transport import resolve_transport
from wamgr.transport.base import Transport
from wamgr.webhooks.sender import WebhookSender
from wamgr.webhooks.signing import decode_secret
from wamgr.workers.claimer import Claimer
from wamgr.workers.command_listener import CommandListener
from wamgr.workers.dispatcher import EventDispatcher
from wamgr.workers.lease_listener import FreedLeaseListener
from wamgr.workers.scheduler import Scheduler
from wamgr.workers.status_feed import StatusFeed
from wamgr.workers.status_writer import StatusWriter
from wamgr.workers.sweeper import Sweeper

#: Seconds ``stop()`` gives links to close and leases to be released, in all.
STOP_BUDGET_S = 20.0
#: Seconds a stop step may wait for a database that is failing (a connection, a worker
#: that waits on one); what it could not write then is lost or expires by itself.
DB_STOP_WAIT_S = 0.5


def _never() -> bool:
    """A start that nothing cancels."""
    return False


class Runtime:
    """The started components of one manager. Build it with :meth:`start`."""

    config: Config
    db: Database
    instances: InstanceStore
    claim: InstanceClaim
    tenants: TenantStore
    leases: LeaseStore
    locks: ProcessingLocks
    inbound_log: InboundLog
    outbox: Outbox
    commands: CommandStore
    calls: CallStore
    dashboard: DashboardStore
    status_feed: StatusFeed
    transport: Transport
    scheduler: Scheduler
    dispatcher: EventDispatcher
    webhooks: WebhookSender | None
    settings: TenantSettingsStore
    writer: StatusWriter
    inbound: InboundPipeline
    supervisor: pykka.ActorRef
    keeper: pykka.ActorRef
    pool: ActorPool
    registry: pykka.ActorRef
    local: LocalTenants
    router: CommandRouter
    outbound: OutboundQueue
    sweeper: Sweeper
    claimer: Claimer
    freed: FreedLeaseListener | None
    listener: CommandListener

    def __init__(self, config: Config, clock: Clock, metrics: Metrics):
        self.config = config
        self.clock = clock
        self.metrics = metrics
        self.webhooks = None
        self.freed = None
        self._stops = StopSteps()
        self._cancelled: Callable[[], bool] = _never
        self._opened: Database | None = None  # the database, once open

    @classmethod
    def start(
        cls,
        config: Config,
        clock: Clock,
        metrics: Metrics,
        cancelled: Callable[[], bool] = _never,
    ) -> Runtime:
        """Build and start every component; on failure, stop what was started and re-raise.

        ``cancelled`` is asked after every step: once it says yes, what was started is
        stopped and StartCancelled raised. Raises InstanceIdInUse if another live process
        holds the configured instance id.
        """
        runtime = cls(config, clock, metrics)
        runtime._cancelled = cancelled
        try:
            runtime._start()
        except BaseException:
            runtime.stop(STOP_BUDGET_S)
            raise
        return runtime

    def stop(self, timeout: float = STOP_BUDGET_S) -> None:
        """Stop every component in the reverse of the start order, within ``timeout`` seconds."""
        db = self._opened
        if db is not None and self._stops.steps:
            db.limit_waits_while_failing(DB_STOP_WAIT_S)
            try:
                db.ping()
            except DatabaseUnavailable as exc:
                logger.warning(
                    "stopping with the database unavailable ({}): each step waits at most "
                    "{:g} s for it; leases not released expire by themselves",
                    exc.detail,
                    DB_STOP_WAIT_S,
                )
        self._stops.run(timeout)

    # --- the start order (read backwards for the stop order) -----------------------------

    def _push(self, what: str, stop: Callable[[float], object]) -> None:
        """Remember how to stop ``what`` (just started); then give up if a stop was asked for."""
        self._stops.push(what, stop)
        if self._cancelled():
            logger.info("stop asked for while starting: stopping what was started")
            raise StartCancelled()

    def _start(self) -> None:
        cfg = self.config
        push = self._push

        # The database goes last: every step below may still write on its way out.
        self.db, close_db = open_database(
            cfg.database_url,
            cfg.home,
            pool_size=cfg.db_pool_size,
            timeout_s=cfg.call_timeout_s,
            # Every statement gives up before the lease fence would: see docs/operations.md.
            limits=SessionLimits.below_fence(
                cfg.renew_interval_s, cfg.renew_deadline_s, cfg.call_timeout_s
            ),
        )
        self._opened = self.db
        push("the database", lambda _: close_db())

        # The instance id is this process's from here until every lease and status write is
        # done (InstanceIdInUse if another live process holds it). Every lease is taken and
        # renewed under this claim, so no other process started with the same id can use them.
        self.instances = InstanceStore(self.db)
        self.claim = self.instances.claim(cfg.instance_id, cfg.lease_ttl_s)
        push("the instance id", lambda _: self._release_instance_id())
        self.tenants = TenantStore(self.db)
        self.leases = LeaseStore(self.db, self.claim)
        self.locks = ProcessingLocks(self.db, owner=cfg.instance_id)
        self.inbound_log = InboundLog(self.db)
        self.outbox = Outbox(self.db)
        self.settings = TenantSettingsStore(self.db)
        self.commands = CommandStore(self.db)
        self.calls = CallStore(self.db)
        self.dashboard = DashboardStore(self.db)
        self.dashboard.record_capacity(self.claim, cfg.capacity)

        # The dashboards hear every instance's status writes; only the database outlives it.
        self.status_feed = StatusFeed(self.db, self.db.url)
        self.status_feed.start()
        push("the status feed", lambda left: self.status_feed.stop(self._db_bound(left)))

        # The transport outlives every link: the tenants close theirs before it goes.
        self.transport, owns_transport = resolve_transport(cfg, self.db.url)
        if owns_transport:
            push("the transport", lambda _: self.transport.close())

        # The scheduler outlives the actors that set timers on it.
        self.scheduler = Scheduler(self.clock)
        self.scheduler.start()
        push("the scheduler", self.scheduler.stop)

        # Subscribers get events from the registry and the inbound pipeline: it ends after
        # both, delivering what they queued.
        self.dispatcher = EventDispatcher()
        self.dispatcher.start()
        push("the event dispatcher", self.dispatcher.stop)

        # Webhooks: the status writer and the inbound pipeline add outbox rows until they end,
        # so delivery ends after them; what is not sent then stays for the next start. The
        # sender runs without global endpoints too: tenants may have their own.
        self.webhooks = WebhookSender(
            self.outbox,
            cfg.instance_id,
            cfg.webhook_urls,
            decode_secret(cfg.webhook_secret) if cfg.webhook_secret else None,
            timeout_s=cfg.webhook_timeout_s,
            retry_base_s=cfg.webhook_retry_base_s,
            retry_max_s=cfg.webhook_retry_max_s,
            max_attempts=cfg.webhook_max_attempts,
            metrics=self.metrics,
        )
        self.webhooks.start()  # deliveries left from before a restart go first
        push("webhook delivery", self.webhooks.stop)
        wake_webhooks = self.webhooks.wake

        # Tenants submit statuses and inbound messages until their last link has closed, so
        # the writer and the inbound pipeline end after the tenants.
        self.writer = StatusWriter(
            self.tenants,
            cfg.instance_id,
            endpoints=cfg.webhook_urls,
            on_events_written=wake_webhooks,
        )
        self.writer.start()
        push("the status writer", lambda left: self.writer.stop(self._db_bound(left)))
        self.inbound = InboundPipeline(
            self.outbox,
            cfg.webhook_urls,
            self.dispatcher.publish,
            on_outbox_rows=wake_webhooks,
            outbound=OutboundStore(self.db),
        )
        self.inbound.start()
        push("the inbound pipeline", self.inbound.stop)

        # The supervisor and the lease keeper serve the tenants: they end after them (the
        # keeper keeps fencing while links close).
        self.supervisor = SupervisorActor.start(cfg, self.clock, self.scheduler)
        push("the supervisor", lambda left: stop_actors([self.supervisor], left))
        self.keeper = LeaseKeeper.start(
            cfg, self.clock, self.scheduler, self.leases, self.metrics, self._stop_taking_work
        )
        push("the lease keeper", lambda left: stop_actors([self.keeper], left))

        # The tenants: on stop every link closes without logout and the leases of the closed
        # ones are released at once, so another instance can take them over right away.
        table = TenantTable()  # the registry's and the tenants'; any thread reads it
        # The tenants' actors share a pool of threads (none of their own): it ends after them.
        self.pool = ActorPool("wamgr-tenants")
        push("the tenants' threads", self.pool.stop)
        services = TenantServices(
            config=cfg,
            clock=self.clock,
            transport=self.transport,
            tenants=self.tenants,
            leases=self.leases,
            writer=self.writer,
            supervisor=self.supervisor,
            keeper=self.keeper,
            on_inbound=self.inbound.submit,
            metrics=self.metrics,
            proxy_of=self.settings.proxy,
            show_status=table.show,
            pool=self.pool,
        )

        def make_tenant(tenant_id: str, registry: pykka.ActorRef) -> pykka.ActorRef:
            return TenantActor.start(tenant_id, services, registry)

        self.registry = RegistryActor.start(make_tenant, self._publish_status, table)
        push("the tenants", self._shut_tenants_down)
        grants = ConnectGrants(self.db, self.tenants, self.leases, cfg.instance_id, cfg.lease_ttl_s)
        self.local = LocalTenants(self.registry, cfg.call_timeout_s, table, grants, self.clock)
        # Forwarded calls: ours wait for replies; those sent here ask the tenants (so the
        # router's threads end before them).
        self.router = CommandRouter(
            cfg.instance_id, self.commands, self.tenants, self.local, cfg.capacity,
            calls=self.calls, leases=self.leases, database_url=self.db.url,
        )  # fmt: skip
        self.router.start()
        push("forwarded calls", lambda left: self.router.stop(self._db_bound(left)))
        # The outbound sender asks the tenants to send: it stops before them.
        self.outbound = OutboundQueue.start(
            cfg, self.clock, self.db, table, self.metrics, wake_webhooks
        )
        push("the outbound queue", lambda left: self.outbound.stop(self._db_bound(left)))
        self.dispatcher.subscribe(self.outbound.on_event)

        # Housekeeping of locks and inbound ids; it touches no tenant.
        self.sweeper = Sweeper(
            self.locks, self.inbound_log, cfg.sweep_interval_s, cfg.inbound_retention_s
        )
        self.sweeper.start()
        push("the sweeper", lambda left: self.sweeper.stop(self._db_bound(left)))

        # What brings work in stops first: no claim and no command may reach a tenant that
        # is shutting down.
        self.claimer = Claimer(
            self.tenants,
            cfg.instance_id,
            cfg.claim_interval_s,
            self.local.connect_later,
            self.local.states,
            self.local.stop_later,
            capacity=cfg.capacity,
            connect_rate=cfg.connect_rate,
            window=max(1, cfg.db_pool_size // 2),
            call_timeout_s=cfg.call_timeout_s,
            leases=self.leases,
            claim_many=self.local.connect_many_later,
            lease_ttl_s=cfg.lease_ttl_s,
            proxies=self.settings.proxies,
            clock=self.clock,
        )
        if cfg.claim_tenants:  # off for one-tenant tools such as `wamgr pair`
            self.claimer.start()  # its first pass restores what should be connected
            push("the claim loop", lambda left: self.claimer.stop(self._db_bound(left)))
            # Leases another instance gives up (it is stopping) are claimed at once, not at
            # the next pass: a handover takes a fraction of a second.
            freed = self.freed = FreedLeaseListener(
                self.leases, self.db.url, cfg.instance_id, self.claimer.wake
            )
            freed.start()
            push("the freed-lease listener", lambda left: freed.stop(self._db_bound(left)))
        self.listener = CommandListener(
            self.commands, self.db.url, cfg.instance_id, self.router.apply,
            calls=self.calls, on_calls=self.router.submit,
        )  # fmt: skip
        self.listener.start()
        push("the command listener", lambda left: self.listener.stop(self._db_bound(left)))
        self.listener.wait_listening(cfg.call_timeout_s)  # else commands arrive by polling
        if self._cancelled():
            raise StartCancelled()

    def _db_bound(self, left_s: float) -> float:
        """What a stop step that waits only on the database gets of ``left_s``: at most
        DB_STOP_WAIT_S while the database is failing (its thread holds nothing to lose)."""
        return min(left_s, DB_STOP_WAIT_S) if self.db.failing else left_s

    def _stop_taking_work(self) -> None:
        """The instance id is another process's now: claim and take commands no more (the
        keeper has fenced every lease). Flags only, never waits: runs on the keeper's thread."""
        for worker in (getattr(self, "claimer", None), getattr(self, "listener", None)):
            if worker is not None:
                worker.stop(0.0)

    def _release_instance_id(self) -> None:
        """Give the instance id up, so a successor may claim it at once."""
        try:
            self.instances.release(self.claim)
        except WamgrError as exc:
            logger.warning(
                "could not release instance id {} (its claim expires by itself within {:g} s): {}",
                self.config.instance_id,
                self.config.lease_ttl_s,
                exc,
            )

    def _publish_status(self, new: TenantStatus, old: TenantStatus | None) -> None:
        """Hand a change of state to the subscribers (called on the registry's thread)."""
        self.dispatcher.publish(StatusEvent(new.tenant_id, old.state if old else None, new))

    def _shut_tenants_down(self, budget_s: float) -> None:
        """Close every link (no logout), release the leases of the closed ones (ours only:
        the store is bound to this process's claim), end the tenant actors and the registry.
        The keeper stops renewing each batch before it is released; a release retries rows a
        renewal holds locked only within what is left of ``budget_s``."""

        end = time.monotonic() + budget_s

        def release(closed: list[str]) -> None:
            with contextlib.suppress(pykka.ActorDeadError):
                self.keeper.tell(LeasesReleased(tuple(closed)))
            left = min(RELEASE_WITHIN_S, max(0.0, end - time.monotonic()))
            self.leases.release_owned(self.config.instance_id, closed, within_s=left)

        shut_down_tenants(self.registry, release, budget_s)
