"""Runtime: builds every component of a started manager, and stops them in one written order.

:meth:`Runtime.start` builds the components bottom-up (database, stores, transport, the
threads and actors that use them, then the loops that bring work in) and records, for each
one it started, how to stop it. :meth:`Runtime.stop` runs those steps in reverse, within ONE
time budget, so each component outlives everything that uses it: nothing new comes in
first, then the links close and their leases go back, then the actors and threads they
talked to end, and the database goes last. A step that fails is logged and the next one
still runs. A start that fails half-way stops what it had started.

The start order below is therefore also the stop order read backwards; the comment at each
step says why it sits where it does.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pykka
from loguru import logger

from wamgr.actors import messages as m
from wamgr.actors.leases import LeaseKeeper
from wamgr.actors.registry import RegistryActor
from wamgr.actors.supervisor import SupervisorActor
from wamgr.actors.tenant import TenantActor, TenantServices
from wamgr.clock import Clock
from wamgr.config import Config
from wamgr.errors import WamgrError
from wamgr.events import StatusEvent
from wamgr.inbound import InboundPipeline
from wamgr.local_tenants import LocalTenants
from wamgr.metrics import Metrics
from wamgr.routing import CommandRouter
from wamgr.status import TenantStatus
from wamgr.store.commands import CommandStore
from wamgr.store.db import Database, SessionLimits, open_database
from wamgr.store.inbound import InboundLog
from wamgr.store.leases import LeaseStore
from wamgr.store.locks import ProcessingLocks
from wamgr.store.outbox import Outbox
from wamgr.store.tenants import TenantStore
from wamgr.transport import resolve_transport
from wamgr.transport.base import Transport
from wamgr.webhooks.sender import WebhookSender
from wamgr.webhooks.signing import decode_secret
from wamgr.workers.claimer import Claimer
from wamgr.workers.command_listener import CommandListener
from wamgr.workers.dispatcher import EventDispatcher
from wamgr.workers.scheduler import Scheduler
from wamgr.workers.status_writer import StatusWriter
from wamgr.workers.sweeper import Sweeper

#: Seconds ``stop()`` gives links to close and leases to be released, in all.
STOP_BUDGET_S = 20.0
#: Seconds a single stop step gets at least, even when the budget is spent.
_MIN_STEP_S = 0.1


@dataclass
class _StopSteps:
    """How to stop what has been started, newest first."""

    steps: list[tuple[str, Callable[[float], object]]] = field(default_factory=list)

    def push(self, what: str, stop: Callable[[float], object]) -> None:
        """Remember that ``stop(seconds_left)`` ends ``what``."""
        self.steps.append((what, stop))

    def run(self, budget_s: float) -> None:
        """Run every step, newest first, within ``budget_s`` seconds in all."""
        end = time.monotonic() + budget_s
        while self.steps:
            what, stop = self.steps.pop()
            try:
                stop(max(_MIN_STEP_S, end - time.monotonic()))
            except Exception:
                logger.exception("stopping {} failed; going on with the rest", what)


class Runtime:
    """The started components of one manager. Build it with :meth:`start`."""

    config: Config
    db: Database
    tenants: TenantStore
    leases: LeaseStore
    locks: ProcessingLocks
    inbound_log: InboundLog
    outbox: Outbox
    commands: CommandStore
    transport: Transport
    scheduler: Scheduler
    dispatcher: EventDispatcher
    webhooks: WebhookSender | None
    writer: StatusWriter
    inbound: InboundPipeline
    supervisor: pykka.ActorRef
    keeper: pykka.ActorRef
    registry: pykka.ActorRef
    local: LocalTenants
    router: CommandRouter
    sweeper: Sweeper
    claimer: Claimer
    listener: CommandListener

    def __init__(self, config: Config, clock: Clock, metrics: Metrics):
        self.config = config
        self.clock = clock
        self.metrics = metrics
        self.webhooks = None
        self._stops = _StopSteps()

    @classmethod
    def start(cls, config: Config, clock: Clock, metrics: Metrics) -> Runtime:
        """Build and start every component; on failure, stop what was started and re-raise."""
        runtime = cls(config, clock, metrics)
        try:
            runtime._start()
        except BaseException:
            runtime.stop(STOP_BUDGET_S)
            raise
        return runtime

    def stop(self, timeout: float = STOP_BUDGET_S) -> None:
        """Stop every component in the reverse of the start order, within ``timeout`` seconds."""
        self._stops.run(timeout)

    # --- the start order (read backwards for the stop order) -----------------------------

    def _start(self) -> None:
        cfg = self.config
        push = self._stops.push

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
        push("the database", lambda _: close_db())
        self.tenants = TenantStore(self.db)
        self.leases = LeaseStore(self.db)
        self.locks = ProcessingLocks(self.db, owner=cfg.instance_id)
        self.inbound_log = InboundLog(self.db)
        self.outbox = Outbox(self.db)
        self.commands = CommandStore(self.db)

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
        # so delivery ends after them; what is not sent then stays for the next start.
        if cfg.webhook_urls:
            self.webhooks = WebhookSender(
                self.outbox,
                cfg.instance_id,
                cfg.webhook_urls,
                decode_secret(cfg.webhook_secret or ""),
                timeout_s=cfg.webhook_timeout_s,
                retry_base_s=cfg.webhook_retry_base_s,
                retry_max_s=cfg.webhook_retry_max_s,
                max_attempts=cfg.webhook_max_attempts,
                metrics=self.metrics,
            )
            self.webhooks.start()  # deliveries left from before a restart go first
            push("webhook delivery", self.webhooks.stop)
        wake_webhooks = self.webhooks.wake if self.webhooks is not None else None

        # Tenants submit statuses and inbound messages until their last link has closed, so
        # the writer and the inbound pipeline end after the tenants.
        self.writer = StatusWriter(
            self.tenants,
            cfg.instance_id,
            endpoints=cfg.webhook_urls,
            on_events_written=wake_webhooks,
        )
        self.writer.start()
        push("the status writer", self.writer.stop)
        self.inbound = InboundPipeline(
            self.inbound_log,
            self.outbox,
            cfg.webhook_urls,
            self.dispatcher.publish,
            on_outbox_rows=wake_webhooks,
        )
        self.inbound.start()
        push("the inbound pipeline", self.inbound.stop)

        # The supervisor and the lease keeper serve the tenants: they end after them (the
        # keeper keeps fencing while links close).
        self.supervisor = SupervisorActor.start(cfg, self.clock, self.scheduler)
        push("the supervisor", lambda left: _stop_actors([self.supervisor], left))
        self.keeper = LeaseKeeper.start(cfg, self.clock, self.scheduler, self.leases, self.metrics)
        push("the lease keeper", lambda left: _stop_actors([self.keeper], left))

        # The tenants: on stop every link closes without logout and the leases of the closed
        # ones are released at once, so another instance can take them over right away.
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
        )

        def make_tenant(tenant_id: str, registry: pykka.ActorRef) -> pykka.ActorRef:
            return TenantActor.start(tenant_id, services, registry)

        self.registry = RegistryActor.start(make_tenant, self._publish_status)
        push("the tenants", self._shut_tenants_down)
        self.local = LocalTenants(self.registry, cfg.call_timeout_s)
        self.router = CommandRouter(
            cfg.instance_id, self.commands, self.tenants, self.local, capacity=cfg.capacity
        )

        # Housekeeping of locks and inbound ids; it touches no tenant.
        self.sweeper = Sweeper(
            self.locks, self.inbound_log, cfg.sweep_interval_s, cfg.inbound_retention_s
        )
        self.sweeper.start()
        push("the sweeper", self.sweeper.stop)

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
        )
        if cfg.claim_tenants:  # off for one-tenant tools such as `wamgr pair`
            self.claimer.start()  # its first pass restores what should be connected
            push("the claim loop", self.claimer.stop)
        self.listener = CommandListener(
            self.commands, self.db.url, cfg.instance_id, self.router.apply
        )
        self.listener.start()
        push("the command listener", self.listener.stop)
        self.listener.wait_listening(cfg.call_timeout_s)  # else commands arrive by polling

    def _publish_status(self, new: TenantStatus, old: TenantStatus | None) -> None:
        """Hand a change of state to the subscribers (called on the registry's thread)."""
        self.dispatcher.publish(StatusEvent(new.tenant_id, old.state if old else None, new))

    def _shut_tenants_down(self, budget_s: float) -> None:
        """Close every link (no logout), release the leases of the closed ones, end the
        tenant actors and the registry."""
        end = time.monotonic() + budget_s

        def left() -> float:
            return max(_MIN_STEP_S, end - time.monotonic())

        try:
            # From here on the registry creates no tenant: a late claim or command fails.
            by_id = self.registry.ask(m.BeginShutdown(), timeout=left())
        except (pykka.Timeout, pykka.ActorDeadError):
            by_id = {}
        waits: dict[str, threading.Event] = {}
        for tenant_id, ref in by_id.items():
            done = threading.Event()
            with contextlib.suppress(pykka.ActorDeadError):
                ref.tell(m.Shutdown(done))
                waits[tenant_id] = done
        closed = [tenant_id for tenant_id, done in waits.items() if done.wait(left())]
        if len(closed) < len(waits):
            logger.warning(
                "{} links did not close within the stop budget; their leases expire by themselves",
                len(waits) - len(closed),
            )
        if closed:
            try:
                self.leases.release_owned(self.config.instance_id, closed)
            except WamgrError as exc:
                logger.warning("could not release leases (they expire by themselves): {}", exc)
        _stop_actors([*by_id.values(), self.registry], left())


def _stop_actors(refs: list[pykka.ActorRef], budget_s: float) -> None:
    """Stop actors without blocking on each in turn, then wait for all within ``budget_s``."""
    end = time.monotonic() + budget_s
    for ref in refs:
        with contextlib.suppress(pykka.ActorDeadError):
            ref.stop(block=False)
    for ref in refs:
        ref.actor_stopped.wait(max(_MIN_STEP_S, end - time.monotonic()))
