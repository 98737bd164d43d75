"""ConnectionManager: the facade an application (and the CLI and HTTP API) talks to.

Plain blocking methods, each bounded by a timeout (``Config.call_timeout_s`` unless given):
they write what is wanted to PostgreSQL, then ask the tenant's actor. This is the only layer
that blocks; the actors below only tell each other.

    with ConnectionManager(Config(database_url=url, transport=sim)) as mgr:
        mgr.connect("t1")
        mgr.wait_for("t1", TenantState.CONNECTED, timeout=10)
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import pykka
from loguru import logger

from wamgr.actors import messages as m
from wamgr.actors.leases import LeaseKeeper
from wamgr.actors.registry import RegistryActor
from wamgr.actors.supervisor import SupervisorActor
from wamgr.actors.tenant import TenantActor, TenantServices
from wamgr.api.metrics import Metrics
from wamgr.api.signing import decode_secret
from wamgr.api.webhooks import WebhookSender
from wamgr.claimer import Claimer
from wamgr.clock import SystemClock
from wamgr.config import Config
from wamgr.errors import (
    HeldElsewhere,
    ManagerStopped,
    NotConnected,
    NotPairing,
    OperationTimeout,
    UnknownTenant,
    WamgrError,
)
from wamgr.events import EventDispatcher, InboundMessage, StatusEvent, Subscriber
from wamgr.scheduler import Scheduler
from wamgr.status import (
    Desired,
    TenantState,
    TenantStatus,
    normalise_phone,
    validate_tenant_id,
)
from wamgr.store.commands import Command, CommandListener, CommandStore
from wamgr.store.db import Database, SessionLimits, open_database
from wamgr.store.inbound import InboundLog
from wamgr.store.leases import LeaseStore
from wamgr.store.locks import ProcessingLocks
from wamgr.store.outbox import Outbox, message_event
from wamgr.store.status_writer import StatusWriter
from wamgr.store.tenants import TenantStore
from wamgr.sweeper import Sweeper
from wamgr.transport import resolve_transport
from wamgr.transport.base import MessageReceived, Transport

#: Seconds ``stop()`` gives links to close and leases to be released, in all.
STOP_BUDGET_S = 20.0


class _Deadline:
    """Seconds left of one call's timeout."""

    def __init__(self, what: str, timeout: float):
        self.what = what
        self.timeout = timeout
        self._end = time.monotonic() + timeout

    def left(self) -> float:
        left = self._end - time.monotonic()
        if left <= 0:
            raise OperationTimeout(self.what, self.timeout)
        return left


class ConnectionManager:
    """Keeps the tenants of one process connected; at most one socket per tenant.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, config: Config):
        self.config = config
        self._clock = config.clock or SystemClock()
        self._started = False
        self._stopping = False
        self._lifecycle = threading.Lock()
        self._db: Database | None = None
        self._close_db: Callable[[], None] | None = None
        self._transport: Transport | None = None
        self._owns_transport = False
        self._scheduler: Scheduler | None = None
        self._writer: StatusWriter | None = None
        self._dispatcher: EventDispatcher | None = None
        self._claimer: Claimer | None = None
        self._supervisor: pykka.ActorRef | None = None
        self._keeper: pykka.ActorRef | None = None
        self._registry: pykka.ActorRef | None = None
        self.tenants_store: TenantStore | None = None
        self.leases_store: LeaseStore | None = None
        # processing locks and inbound dedup
        self._locks: ProcessingLocks | None = None
        self._inbound: InboundLog | None = None
        self._sweeper: Sweeper | None = None
        # the service surface: metrics, webhooks, commands from other instances
        #: This manager's Prometheus metrics (``metrics.render()`` is ``GET /metrics``).
        self.metrics = Metrics(self._metric_states)
        self._outbox: Outbox | None = None
        self._webhooks: WebhookSender | None = None
        self._commands: CommandStore | None = None
        self._listener: CommandListener | None = None

    # --- life cycle ---------------------------------------------------------------------

    def __enter__(self) -> ConnectionManager:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> ConnectionManager:
        """Open the database, migrate it, start the actors and restore tenants."""
        with self._lifecycle:
            if self._started:
                return self
            try:
                self._start()
            except BaseException:
                self._teardown(STOP_BUDGET_S)
                raise
            self._started = True
        logger.info("manager {} started", self.config.instance_id)
        return self

    def _start(self) -> None:
        cfg = self.config
        self._db, self._close_db = open_database(
            cfg.database_url,
            cfg.home,
            pool_size=cfg.db_pool_size,
            timeout_s=cfg.call_timeout_s,
            limits=SessionLimits.below_fence(
                cfg.renew_interval_s, cfg.renew_deadline_s, cfg.call_timeout_s
            ),
        )
        url = self._db.url
        self.tenants_store = TenantStore(self._db)
        self.leases_store = LeaseStore(self._db)
        self._start_locks_and_inbound(self._db)  # before any tenant can receive a message
        self._transport, self._owns_transport = resolve_transport(cfg, url)
        self._scheduler = Scheduler(self._clock)
        self._outbox = Outbox(self._db)
        self._commands = CommandStore(self._db)
        if cfg.webhook_urls:
            self._webhooks = WebhookSender(
                self._outbox,
                cfg.instance_id,
                cfg.webhook_urls,
                decode_secret(cfg.webhook_secret or ""),
                timeout_s=cfg.webhook_timeout_s,
                retry_base_s=cfg.webhook_retry_base_s,
                retry_max_s=cfg.webhook_retry_max_s,
                max_attempts=cfg.webhook_max_attempts,
                metrics=self.metrics,
            )
        self._writer = StatusWriter(
            self.tenants_store,
            cfg.instance_id,
            endpoints=cfg.webhook_urls,
            on_events_written=self._webhooks.wake if self._webhooks else None,
        )
        self._dispatcher = EventDispatcher()
        self._supervisor = SupervisorActor.start(cfg, self._clock, self._scheduler)
        self._keeper = LeaseKeeper.start(
            cfg, self._clock, self._scheduler, self.leases_store, self.metrics
        )
        services = TenantServices(
            config=cfg,
            clock=self._clock,
            transport=self._transport,
            tenants=self.tenants_store,
            leases=self.leases_store,
            writer=self._writer,
            supervisor=self._supervisor,
            keeper=self._keeper,
            on_inbound=self._on_inbound,
            metrics=self.metrics,
        )

        def make_tenant(tenant_id: str, registry: pykka.ActorRef) -> pykka.ActorRef:
            return TenantActor.start(tenant_id, services, registry)

        self._registry = RegistryActor.start(make_tenant, self._on_status)
        self._claimer = Claimer(
            self.tenants_store,
            cfg.instance_id,
            cfg.claim_interval_s,
            self._claim,
            self._local_statuses,
            self._release_unwanted,
            capacity=cfg.capacity,
            connect_rate=cfg.connect_rate,
            window=max(1, cfg.db_pool_size // 2),
            call_timeout_s=cfg.call_timeout_s,
        )
        if cfg.claim_tenants:  # off for one-tenant tools such as `wamgr pair`
            self._claimer.start()  # its first pass restores what should be connected
        self._listener = CommandListener(self._commands, url, cfg.instance_id, self._apply_command)
        self._listener.start(cfg.call_timeout_s)
        if self._webhooks is not None:
            self._webhooks.start()  # deliveries left from before a restart go first

    def stop(self, timeout: float = STOP_BUDGET_S) -> None:
        """Close every link without logout, release every lease, end every thread.

        Waits at most ``timeout`` seconds in all; pending calls fail with ManagerStopped.
        """
        with self._lifecycle:
            if not self._started or self._stopping:
                return
            self._stopping = True
            self._teardown(timeout)
            self._started = False
        logger.info("manager {} stopped", self.config.instance_id)

    def _teardown(self, timeout: float) -> None:
        end = time.monotonic() + timeout

        def left() -> float:
            return max(0.1, end - time.monotonic())

        if self._listener is not None:
            self._listener.stop(left())
        if self._claimer is not None:
            self._claimer.stop(left())
        if self._sweeper is not None:
            self._sweeper.stop(left())
        if self._registry is not None:
            try:
                by_id = self._registry.ask(m.BeginShutdown(), timeout=left())
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
                    "{} links did not close within the stop budget; their leases expire by "
                    "themselves",
                    len(waits) - len(closed),
                )
            self._release_leases(closed)
            tenants = list(by_id.values())
            others = [*tenants, self._registry]
        else:
            others = []
        for ref in [*others, self._supervisor, self._keeper]:
            if ref is not None:
                with contextlib.suppress(pykka.ActorDeadError):
                    ref.stop(block=False)
        for ref in [*others, self._supervisor, self._keeper]:
            if ref is not None:
                ref.actor_stopped.wait(left())
        if self._scheduler is not None:
            self._scheduler.stop(left())
        if self._writer is not None:
            self._writer.stop(left())
        if self._webhooks is not None:
            self._webhooks.stop(left())  # what it has not sent is sent after the next start
        if self._dispatcher is not None:
            self._dispatcher.stop(left())
        if self._transport is not None and self._owns_transport:
            self._transport.close()
        if self._close_db is not None:
            self._close_db()
            self._close_db = None

    def _refuse_if_held_elsewhere(self, tenant_id: str, what: str) -> None:
        lease = self.leases_store.holder(tenant_id) if self.leases_store else None
        if lease is None or lease.owner == self.config.instance_id or self._db is None:
            return
        with self._db.connection() as conn:
            live = conn.execute("SELECT %s::timestamptz > now()", (lease.expires_at,)).fetchone()
        if live and live[0]:
            raise HeldElsewhere(tenant_id, lease.owner, what)

    def _release_leases(self, tenant_ids: list[str]) -> None:
        if self.leases_store is None or not tenant_ids:
            return
        try:
            self.leases_store.release_owned(self.config.instance_id, tenant_ids)
        except WamgrError as exc:
            logger.warning("could not release leases (they expire by themselves): {}", exc)

    # --- commands -----------------------------------------------------------------------

    def connect(self, tenant_id: str, timeout: float | None = None) -> TenantStatus:
        """Make sure ``tenant_id`` is connected (opening at most one socket) and return its status.

        The tenant is created if new. With a link in any state, or a reconnect already
        scheduled, nothing new is opened. A tenant parked in conflict, logged_out or failed
        is connected again (that is the operator's manual connect).
        """
        tenant_id = validate_tenant_id(tenant_id)
        deadline = self._deadline(f"connect({tenant_id!r})", timeout)
        self._tenants().set_desired(tenant_id, Desired.CONNECTED)
        ref = self._ask(self._registry_ref(), m.GetOrCreate(tenant_id), deadline)
        return self._ask(ref, m.Connect(), deadline)

    def reconnect(self, tenant_id: str, timeout: float | None = None) -> TenantStatus:
        """Close the tenant's link (no logout) and open a new one once the old one is closed.

        If another live instance holds the tenant, the reconnect is sent to it (LISTEN/NOTIFY)
        and the status it last stored is returned at once.
        """
        tenant_id = validate_tenant_id(tenant_id)
        deadline = self._deadline(f"reconnect({tenant_id!r})", timeout)
        self._tenants().set_desired(tenant_id, Desired.CONNECTED)
        forwarded = self._forward(tenant_id, Command.RECONNECT)
        if forwarded is not None:
            return forwarded
        ref = self._ask(self._registry_ref(), m.GetOrCreate(tenant_id), deadline)
        return self._ask(ref, m.Reconnect(), deadline)

    def remove(
        self, tenant_id: str, do_logout: bool = False, timeout: float | None = None
    ) -> TenantStatus | None:
        """Stop the tenant: close its link, release its lease; returns once the link is gone.

        With ``do_logout`` the device is unlinked from the phone (only possible while
        connected) and its credentials are cleared. The tenant stays known, with its device,
        so a later ``connect`` resumes without pairing. Unknown tenants: no-op, returns None.
        If another live instance holds the tenant, the command is sent to it and the status it
        last stored is returned at once.
        """
        tenant_id = validate_tenant_id(tenant_id)
        deadline = self._deadline(f"remove({tenant_id!r})", timeout)
        self._tenants().set_desired(tenant_id, Desired.STOPPED)
        forwarded = self._forward(tenant_id, Command.LOGOUT if do_logout else Command.DISCONNECT)
        ref = self._ask(self._registry_ref(), m.Lookup(tenant_id), deadline)
        if ref is None or forwarded is not None:
            if ref is not None:  # our standby copy: stop it too
                self._ask(ref, m.Remove(False, threading.Event()), deadline)
            if forwarded is not None:
                return forwarded
            record = self._tenants().get(tenant_id)
            return record.status if record else None
        done = threading.Event()
        status = self._ask(ref, m.Remove(do_logout, done), deadline)
        if not done.wait(deadline.left()):
            raise OperationTimeout(deadline.what, deadline.timeout)
        return (
            self._ask(ref, m.GetStatus(), deadline)
            if status.state is not TenantState.STOPPED
            else status
        )

    def clear_auth(self, tenant_id: str, timeout: float | None = None) -> TenantStatus:
        """Forget the tenant's device credentials (only this tenant's; others keep theirs).

        Its link is closed without logout, its lease released, and it waits in ``logged_out``
        until ``connect`` pairs it again. Raises UnknownTenant, or HeldElsewhere if another
        live instance holds the tenant (clear it there, or stop it first).
        """
        tenant_id = validate_tenant_id(tenant_id)
        deadline = self._deadline(f"clear_auth({tenant_id!r})", timeout)
        if self._tenants().get(tenant_id) is None:
            raise UnknownTenant(tenant_id)
        ref = self._ask(self._registry_ref(), m.Lookup(tenant_id), deadline)
        if ref is None:
            self._refuse_if_held_elsewhere(tenant_id, "clear its credentials")
            ref = self._ask(self._registry_ref(), m.GetOrCreate(tenant_id), deadline)
        done = threading.Event()
        self._ask(ref, m.ClearAuth(done), deadline)
        if not done.wait(deadline.left()):
            raise OperationTimeout(deadline.what, deadline.timeout)
        return self._ask(ref, m.GetStatus(), deadline)

    def pair_code(self, tenant_id: str, phone: str, timeout: float | None = None) -> str:
        """A code to type on the phone instead of scanning the QR, while the tenant is pairing.

        ``phone`` is the international number (country code first). Raises InvalidPhone, or
        NotPairing unless the tenant shows a QR in this process right now.
        """
        tenant_id = validate_tenant_id(tenant_id)
        digits = normalise_phone(phone)
        deadline = self._deadline(f"pair_code({tenant_id!r})", timeout)
        ref = self._ask(self._registry_ref(), m.Lookup(tenant_id), deadline)
        if ref is None:
            raise NotPairing(tenant_id, str(self.status(tenant_id).state))
        return self._ask(ref, m.RequestPairCode(digits), deadline)

    def send_text(self, tenant_id: str, to: str, text: str, timeout: float | None = None) -> str:
        """Send ``text`` to ``to`` (a phone number or JID); returns the message id.

        Raises NotConnected (naming the state and what to do) unless the tenant is connected
        in this process.
        """
        tenant_id = validate_tenant_id(tenant_id)
        if not isinstance(to, str) or not to.strip():
            raise ValueError("send_text needs a recipient: a phone number or a JID")
        deadline = self._deadline(f"send_text({tenant_id!r})", timeout)
        ref = self._ask(self._registry_ref(), m.Lookup(tenant_id), deadline)
        if ref is None:
            raise NotConnected(tenant_id, str(self.status(tenant_id).state))
        return self._ask(ref, m.SendText(to, text), deadline)

    # --- queries ------------------------------------------------------------------------

    def is_connection_active(self, tenant_id: str, timeout: float | None = None) -> bool:
        """Whether the tenant has a connected link in this process (answered by the registry)."""
        tenant_id = validate_tenant_id(tenant_id)
        deadline = self._deadline(f"is_connection_active({tenant_id!r})", timeout)
        return bool(self._ask(self._registry_ref(), m.IsActive(tenant_id), deadline))

    def status(self, tenant_id: str, timeout: float | None = None) -> TenantStatus:
        """The tenant's status: live if this process runs it, else as stored.

        Raises UnknownTenant if it was never added.
        """
        tenant_id = validate_tenant_id(tenant_id)
        deadline = self._deadline(f"status({tenant_id!r})", timeout)
        status = self._ask(self._registry_ref(), m.StatusOf(tenant_id), deadline)
        if status is not None:
            return status
        record = self._tenants().get(tenant_id)
        if record is None:
            raise UnknownTenant(tenant_id)
        return record.status

    def statuses(self, timeout: float | None = None) -> list[TenantStatus]:
        """Every known tenant's status, ordered by id (live where this process runs it)."""
        deadline = self._deadline("statuses()", timeout)
        live = {s.tenant_id: s for s in self._ask(self._registry_ref(), m.AllStatuses(), deadline)}
        stored = {r.status.tenant_id: r.status for r in self._tenants().all()}
        stored.update(live)
        return [stored[t] for t in sorted(stored)]

    def local_statuses(self, timeout: float | None = None) -> list[TenantStatus]:
        """The statuses of the tenants this process runs, ordered by id (no database read)."""
        deadline = self._deadline("local_statuses()", timeout)
        return list(self._ask(self._registry_ref(), m.AllStatuses(), deadline))

    def qr(self, tenant_id: str, timeout: float | None = None) -> str | None:
        """The QR code the tenant shows while pairing, or None."""
        tenant_id = validate_tenant_id(tenant_id)
        deadline = self._deadline(f"qr({tenant_id!r})", timeout)
        ref = self._ask(self._registry_ref(), m.Lookup(tenant_id), deadline)
        return None if ref is None else self._ask(ref, m.GetQr(), deadline)

    def wait_for(
        self,
        tenant_id: str,
        state: TenantState | Iterable[TenantState],
        timeout: float | None = None,
    ) -> TenantStatus:
        """Block until the tenant is in ``state`` (or one of several) in this process.

        Returns the status that matched; raises OperationTimeout after ``timeout`` seconds.
        """
        tenant_id = validate_tenant_id(tenant_id)
        states = {TenantState(state)} if isinstance(state, str) else {TenantState(s) for s in state}
        names = "|".join(sorted(states))
        deadline = self._deadline(f"wait_for({tenant_id!r}, {names})", timeout)
        waiter = m.WaitFor(tenant_id, frozenset(states))
        registry = self._registry_ref()
        registry.tell(waiter)
        if waiter.event.wait(deadline.timeout):
            return waiter.result[0]
        registry.tell(m.CancelWait(waiter))
        raise OperationTimeout(deadline.what, deadline.timeout)

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback`` with every StatusEvent and InboundMessage; returns an unsubscriber.

        Callbacks run on one dispatcher thread; one that raises is logged and skipped.
        """
        if self._dispatcher is None:
            raise ManagerStopped()
        return self._dispatcher.subscribe(callback)

    # --- processing locks and inbound dedup ----------------------------------------------

    @property
    def locks(self) -> ProcessingLocks:
        """Processing locks in this manager's database: ``claim(key, ttl)`` and
        ``hold(key, ttl, wait)``; see :mod:`wamgr.store.locks`. Raises ManagerStopped unless
        started."""
        if self._locks is None or not self._started or self._stopping:
            raise ManagerStopped()
        return self._locks

    def seen(self, tenant_id: str, message_id: str) -> bool:
        """Record that ``tenant_id`` received ``message_id``: True the first time (process
        it), False for every later delivery, from any process (drop it).

        Ids are remembered for ``inbound_retention_s`` (7 days by default). Inbound messages
        from the transport already go through this before they reach subscribers, so calling
        it for an InboundMessage you were given answers False: use it for ids from elsewhere.
        """
        tenant_id = validate_tenant_id(tenant_id)
        if self._inbound is None or not self._started or self._stopping:
            raise ManagerStopped()
        return self._inbound.seen(tenant_id, message_id)

    # --- the service surface: health, commands from other instances ---------------------

    def check_database(self) -> None:
        """Run one statement; raises DatabaseUnavailable (or ManagerStopped) if it fails."""
        if self._db is None or not self._started:
            raise ManagerStopped()
        self._db.ping()

    def leases_held(self) -> int:
        """How many unexpired leases this instance holds, as the database says."""
        if self._db is None:
            raise ManagerStopped()
        with self._db.connection() as conn:
            row = conn.execute(
                "SELECT count(*) FROM wamgr_leases WHERE owner = %s AND expires_at > now()",
                (self.config.instance_id,),
            ).fetchone()
        return int(row[0]) if row else 0

    def _forward(self, tenant_id: str, command: Command) -> TenantStatus | None:
        """Send ``command`` to the live holder of the tenant if that is another instance;
        returns the tenant's stored status then, None if the command is ours to run."""
        if self._commands is None:
            raise ManagerStopped()
        target = self._commands.send(tenant_id, command, sender=self.config.instance_id)
        if target is None:
            return None
        logger.bind(tenant=tenant_id).info("{} sent to {}, which holds the tenant", command, target)
        record = self._tenants().get(tenant_id)
        return record.status if record else None

    def _apply_command(self, tenant_id: str, command: Command) -> None:
        """Run a command another instance (or the CLI) sent us; the desired state is written
        already. Does not wait for a link to close."""
        deadline = _Deadline(f"{command}({tenant_id!r})", self.config.call_timeout_s)
        registry = self._registry_ref()
        if command in (Command.CONNECT, Command.RECONNECT):
            ref = self._ask(registry, m.GetOrCreate(tenant_id), deadline)
            self._ask(ref, m.Connect() if command is Command.CONNECT else m.Reconnect(), deadline)
            return
        ref = self._ask(registry, m.Lookup(tenant_id), deadline)
        if ref is not None:
            self._ask(ref, m.Remove(command is Command.LOGOUT, threading.Event()), deadline)

    def _metric_states(self) -> list[TenantState]:
        if self._registry is None or not self._started:
            return []
        return list(self._local_statuses().values())

    def _start_locks_and_inbound(self, db: Database) -> None:
        cfg = self.config
        self._locks = ProcessingLocks(db, owner=cfg.instance_id)
        self._inbound = InboundLog(db)
        self._sweeper = Sweeper(
            self._locks, self._inbound, cfg.sweep_interval_s, cfg.inbound_retention_s
        )
        self._sweeper.start()

    def _first_delivery(self, tenant_id: str, message: MessageReceived) -> bool:
        """Whether an inbound message is new (runs on the tenant actor's own thread: one
        short statement). If the id cannot be recorded the message is delivered anyway: a
        possible duplicate is better than a lost customer message."""
        if self._inbound is None:
            return True
        try:
            if self.config.webhook_urls and self._outbox is not None:
                event = message_event(tenant_id, message.message_id, message.sender, message.text)
                new = self._outbox.record_inbound(
                    tenant_id, message.message_id, event, self.config.webhook_urls
                )
                if new and self._webhooks is not None:
                    self._webhooks.wake()
                return new
            return self._inbound.seen(tenant_id, message.message_id)
        except WamgrError as exc:
            logger.bind(tenant=tenant_id).warning(
                "could not record inbound message {} ({}); delivering it, it may be a duplicate",
                message.message_id,
                exc.format_message(),
            )
            return True

    # --- internals ----------------------------------------------------------------------

    def _deadline(self, what: str, timeout: float | None) -> _Deadline:
        if not self._started or self._stopping:
            raise ManagerStopped()
        return _Deadline(what, self.config.call_timeout_s if timeout is None else timeout)

    def _tenants(self) -> TenantStore:
        if self.tenants_store is None:
            raise ManagerStopped()
        return self.tenants_store

    def _registry_ref(self) -> pykka.ActorRef:
        if self._registry is None:
            raise ManagerStopped()
        return self._registry

    @staticmethod
    def _ask(ref: pykka.ActorRef, message: object, deadline: _Deadline) -> Any:
        try:
            return ref.ask(message, block=False).get(timeout=deadline.left())
        except pykka.Timeout:
            raise OperationTimeout(deadline.what, deadline.timeout) from None
        except pykka.ActorDeadError:
            raise ManagerStopped() from None

    def _on_status(self, new: TenantStatus, old: TenantStatus | None) -> None:
        if self._dispatcher is not None:
            old_state = old.state if old else None
            self._dispatcher.publish(StatusEvent(new.tenant_id, old_state, new))

    def _on_inbound(self, tenant_id: str, message: MessageReceived) -> None:
        if not self._first_delivery(tenant_id, message):
            logger.bind(tenant=tenant_id).debug(
                "dropped a redelivery of message {}", message.message_id
            )
            return
        if self._dispatcher is not None:
            self._dispatcher.publish(
                InboundMessage(tenant_id, message.message_id, message.sender, message.text)
            )

    # The claimer's callbacks may run before start() has returned: they skip _deadline's check.

    def _local_statuses(self) -> dict[str, TenantState]:
        deadline = _Deadline("claim: local statuses", self.config.call_timeout_s)
        statuses = self._ask(self._registry_ref(), m.AllStatuses(), deadline)
        return {s.tenant_id: s.state for s in statuses}

    def _claim(self, tenant_id: str) -> pykka.Future:
        deadline = _Deadline(f"claim({tenant_id!r})", self.config.call_timeout_s)
        ref = self._ask(self._registry_ref(), m.GetOrCreate(tenant_id), deadline)
        return ref.ask(m.Connect(), block=False)

    def _release_unwanted(self, tenant_id: str) -> None:
        deadline = _Deadline(f"release({tenant_id!r})", self.config.call_timeout_s)
        ref = self._ask(self._registry_ref(), m.Lookup(tenant_id), deadline)
        if ref is not None:
            self._ask(ref, m.Remove(False, threading.Event()), deadline)
