"""ConnectionManager: the facade an application (and the CLI and HTTP API) talks to.

Plain blocking methods, each bounded by a timeout (``Config.call_timeout_s`` unless given):
they write what is wanted to PostgreSQL, then ask the tenant's actor. This is the only layer
that blocks; the actors below only tell each other. What the manager runs while started is
built and stopped by :class:`~wamgr.runtime.Runtime`.

    with ConnectionManager(Config(database_url=url, transport=sim)) as mgr:
        mgr.connect("t1")
        mgr.wait_for("t1", TenantState.CONNECTED, timeout=10)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from loguru import logger

from wamgr.actors import messages as m
from wamgr.clock import SystemClock
from wamgr.config import Config
from wamgr.errors import ManagerStopped, OperationTimeout, UnknownTenant
from wamgr.events import Subscriber
from wamgr.forwarding import CallKind
from wamgr.local_tenants import Deadline, ask
from wamgr.metrics import Metrics
from wamgr.runtime import STOP_BUDGET_S, Runtime
from wamgr.status import (
    Desired,
    TenantState,
    TenantStatus,
    normalise_phone,
    validate_recipient,
    validate_tenant_id,
)
from wamgr.store.commands import Command
from wamgr.store.leases import LeaseStore
from wamgr.store.locks import ProcessingLocks
from wamgr.store.outbound import OutboundMessage
from wamgr.store.tenants import TenantStore
from wamgr.tenant_settings import FIELDS as SETTING_FIELDS
from wamgr.tenant_settings import TenantSettings
from wamgr.transport.media_fetch import MediaUrl
from wamgr.transport.outgoing import Outgoing

__all__ = ["STOP_BUDGET_S", "ConnectionManager"]


class ConnectionManager:
    """Keeps the tenants of one process connected; at most one socket per tenant.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, config: Config):
        self.config = config
        self._clock = config.clock or SystemClock()
        self._lifecycle = threading.Lock()
        self._runtime: Runtime | None = None
        self._stopping = False
        self._stop_asked = threading.Event()  # a start under way gives up at its next step
        #: This manager's Prometheus metrics (``metrics.render()`` is ``GET /metrics``).
        self.metrics = Metrics(self._metric_states)

    # --- life cycle ---------------------------------------------------------------------

    def __enter__(self) -> ConnectionManager:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self, cancel: Callable[[], bool] | None = None) -> ConnectionManager:
        """Open the database, claim the instance id, start the actors and restore tenants.

        Raises InstanceIdInUse if another live process holds ``config.instance_id``. A
        :meth:`stop` from another thread while this runs, or ``cancel()`` answering True
        (it is asked between the steps of the start), stops what was started and raises
        StartCancelled before any tenant is claimed. Started already: returns at once.
        """
        with self._lifecycle:
            if self._runtime is not None:
                return self
            self._stop_asked.clear()

            def cancelled() -> bool:
                return self._stop_asked.is_set() or (cancel is not None and cancel())

            self._runtime = Runtime.start(self.config, self._clock, self.metrics, cancelled)
            self._stopping = False
        logger.info("manager {} started", self.config.instance_id)
        return self

    def stop(self, timeout: float = STOP_BUDGET_S) -> None:
        """Close every link without logout, release every lease, end every thread.

        Waits at most ``timeout`` seconds in all; calls made meanwhile fail with
        ManagerStopped. Called while :meth:`start` runs on another thread, it makes that
        start give up (StartCancelled there) and returns once it has.
        """
        self._stop_asked.set()
        with self._lifecycle:
            runtime = self._runtime
            if runtime is None or self._stopping:
                return
            self._stopping = True
            try:
                runtime.stop(timeout)
            finally:
                self._runtime = None
        logger.info("manager {} stopped", self.config.instance_id)

    @property
    def runtime(self) -> Runtime:
        """The running components (for diagnostics and tests); ManagerStopped unless started."""
        runtime = self._runtime
        if runtime is None or self._stopping:
            raise ManagerStopped()
        return runtime

    @property
    def tenants_store(self) -> TenantStore:
        """The tenants table of this manager's database."""
        return self.runtime.tenants

    @property
    def leases_store(self) -> LeaseStore:
        """The leases table of this manager's database."""
        return self.runtime.leases

    # --- commands -----------------------------------------------------------------------

    def connect(self, tenant_id: str, timeout: float | None = None) -> TenantStatus:
        """Make sure ``tenant_id`` is connected (opening at most one socket) and return its status.

        The tenant is created if new. With a link in any state, or a reconnect already
        scheduled, nothing new is opened. A tenant parked in conflict, logged_out or failed
        is connected again (that is the operator's manual connect).
        """
        tenant_id = validate_tenant_id(tenant_id)
        rt, deadline = self._call(f"connect({tenant_id!r})", timeout)
        return rt.local.connect(tenant_id, deadline)

    def reconnect(self, tenant_id: str, timeout: float | None = None) -> TenantStatus:
        """Close the tenant's link (no logout) and open a new one once the old one is closed.
        If another live instance holds the tenant, the reconnect is sent to it (LISTEN/NOTIFY)
        and the status it last stored is returned at once."""
        tenant_id = validate_tenant_id(tenant_id)
        rt, deadline = self._call(f"reconnect({tenant_id!r})", timeout)
        rt.tenants.set_desired(tenant_id, Desired.CONNECTED)
        forwarded = rt.router.forward(tenant_id, Command.RECONNECT)
        if forwarded is not None:
            return forwarded
        ref = rt.local.get_or_create(tenant_id, deadline)
        return ask(ref, m.Reconnect(), deadline)

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
        rt, deadline = self._call(f"remove({tenant_id!r})", timeout)
        rt.tenants.set_desired(tenant_id, Desired.STOPPED)
        forwarded = rt.router.forward(
            tenant_id, Command.LOGOUT if do_logout else Command.DISCONNECT
        )
        ref = rt.local.lookup(tenant_id, deadline)
        if ref is None or forwarded is not None:
            if ref is not None:  # our standby copy: stop it too
                ask(ref, m.Remove(False, threading.Event()), deadline)
            if forwarded is not None:
                return forwarded
            record = rt.tenants.get(tenant_id)
            return record.status if record else None
        done = threading.Event()
        status = ask(ref, m.Remove(do_logout, done), deadline)
        if not done.wait(deadline.left()):
            raise OperationTimeout(deadline.what, deadline.timeout)
        if status.state is TenantState.STOPPED:
            return status
        return ask(ref, m.GetStatus(), deadline)

    def clear_auth(self, tenant_id: str, timeout: float | None = None) -> TenantStatus:
        """Forget the tenant's device credentials (only this tenant's; others keep theirs).

        Its link is closed without logout, its lease released, and it waits in ``logged_out``
        until ``connect`` pairs it again. Done by the instance that holds the tenant (the
        call is forwarded to it). Raises UnknownTenant.
        """
        tenant_id = validate_tenant_id(tenant_id)
        rt, deadline = self._call(f"clear_auth({tenant_id!r})", timeout)
        return rt.router.call(tenant_id, CallKind.CLEAR_AUTH, {}, deadline)

    def pair_code(self, tenant_id: str, phone: str, timeout: float | None = None) -> str:
        """A code to type on the phone instead of scanning the QR, while the tenant is pairing.

        ``phone`` is the international number (country code first). Raises InvalidPhone, or
        NotPairing unless the tenant shows a QR right now (on the instance that holds it).
        """
        tenant_id = validate_tenant_id(tenant_id)
        digits = normalise_phone(phone)
        rt, deadline = self._call(f"pair_code({tenant_id!r})", timeout)
        return rt.router.call(tenant_id, CallKind.PAIR_CODE, {"phone": digits}, deadline)

    def send_text(self, tenant_id: str, to: str, text: str, timeout: float | None = None) -> str:
        """Send ``text`` to ``to`` (a phone number or JID) now; returns the message id.

        Sent by the instance that holds the tenant (forwarded to it if that is another one).
        Raises NotConnected (naming the state, the holder, and what to do) unless the tenant
        is connected; HolderNotAnswering if its holder does not answer within ``timeout``.
        """
        tenant_id = validate_tenant_id(tenant_id)
        to = validate_recipient(to)
        rt, deadline = self._call(f"send_text({tenant_id!r})", timeout)
        return rt.router.call(tenant_id, CallKind.SEND_TEXT, {"to": to, "text": text}, deadline)

    # --- the durable outbound queue (wamgr.outbound) -----------------------------------

    def send(
        self,
        tenant_id: str,
        to: str,
        text: str,
        *,
        idempotency_key: str | None = None,
        expires_in: float | None = None,
    ) -> OutboundMessage:
        """Queue ``text`` for ``to`` whatever the tenant's state; the instance holding the
        tenant sends it once connected, in order and paced, never twice. The same
        ``idempotency_key`` for the tenant returns the first message instead of a new one;
        ``expires_in`` seconds (``outbound_expires_in`` if None) unsent, it expires."""
        return self.runtime.outbound.add(
            tenant_id, to, text, idempotency_key=idempotency_key, expires_in=expires_in
        )

    def send_message(
        self,
        tenant_id: str,
        message: Outgoing | MediaUrl,
        *,
        idempotency_key: str | None = None,
        expires_in: float | None = None,
    ) -> OutboundMessage:
        """Queue any message (media, reply, reaction, read, presence; a file by URL is fetched
        by the sender) as :meth:`send` does; MediaRefused / MediaTooLarge before queueing."""
        return self.runtime.outbound.add_outgoing(
            tenant_id, message, idempotency_key=idempotency_key, expires_in=expires_in
        )

    def outbound(self, tenant_id: str, message_id: str) -> OutboundMessage:
        """A queued (or sent, failed…) message; raises UnknownMessage."""
        return self.runtime.outbound.get(tenant_id, message_id)

    def outbound_messages(
        self, tenant_id: str, status: str | None = None, limit: int = 100
    ) -> list[OutboundMessage]:
        """The tenant's outbound messages (in ``status``, e.g. "queued"), oldest first."""
        return self.runtime.outbound.list(tenant_id, status, limit)

    def cancel_outbound(self, tenant_id: str, message_id: str) -> OutboundMessage:
        """Cancel a queued message; raises MessageStateConflict once it is no longer queued."""
        return self.runtime.outbound.cancel(tenant_id, message_id)

    def resend(self, tenant_id: str, message_id: str) -> OutboundMessage:
        """Queue again an unknown, failed, expired or cancelled message (MessageStateConflict
        otherwise): an ``unknown`` one may then reach the recipient twice."""
        return self.runtime.outbound.resend(tenant_id, message_id)

    # --- per-tenant settings ------------------------------------------------------------

    def configure(
        self,
        tenant_id: str,
        settings: TenantSettings | None = None,
        *,
        create: bool = False,
        **changes: Any,
    ) -> TenantSettings:
        """Set the tenant's settings and return them (see :mod:`wamgr.tenant_settings`):
        ``proxy``, ``webhooks``, ``send_rate``, ``send_burst``, ``metadata``.

        A ``TenantSettings`` replaces them all; keyword ``changes`` change only the settings
        named (None clears one). Raises InvalidSetting naming the field, UnknownTenant unless
        the tenant exists (or ``create``: added wanted stopped). A new proxy is used from
        the tenant's next dial (``reconnect`` to apply it now).
        """
        tenant_id = validate_tenant_id(tenant_id)
        store = self.runtime.settings
        base = TenantSettings() if settings is not None else store.get(tenant_id)
        if settings is not None:
            changes = {f: getattr(settings, f) for f in SETTING_FIELDS} | changes
        updated = base.changed(**changes)
        store.put(tenant_id, updated, create=create)
        logger.bind(tenant=tenant_id).info("settings changed: {}", ", ".join(sorted(changes)))
        return updated

    def settings(self, tenant_id: str) -> TenantSettings:
        """The tenant's settings (defaults if it has none); UnknownTenant if never added.
        Show them with ``.shown()``: secrets masked."""
        tenant_id = validate_tenant_id(tenant_id)
        if self.runtime.tenants.get(tenant_id) is None:
            raise UnknownTenant(tenant_id)
        return self.runtime.settings.get(tenant_id)

    # --- queries ------------------------------------------------------------------------

    def is_connection_active(self, tenant_id: str, timeout: float | None = None) -> bool:
        """Whether the tenant has a connected link in this process (read from the registry's
        table, without waiting for any thread)."""
        tenant_id = validate_tenant_id(tenant_id)
        return self.runtime.local.table.is_active(tenant_id)

    def status(self, tenant_id: str, timeout: float | None = None) -> TenantStatus:
        """The tenant's status: live if this process runs it, else as stored; UnknownTenant
        if it was never added."""
        tenant_id = validate_tenant_id(tenant_id)
        rt = self.runtime
        status = rt.local.table.status(tenant_id)  # live, without waiting for any thread
        if status is not None:
            return status
        record = rt.tenants.get(tenant_id)
        if record is None:
            raise UnknownTenant(tenant_id)
        return record.status

    def statuses(self, timeout: float | None = None) -> list[TenantStatus]:
        """Every known tenant's status, ordered by id (live where this process runs it)."""
        rt, deadline = self._call("statuses()", timeout)
        live = {s.tenant_id: s for s in rt.local.statuses(deadline)}
        stored = {r.status.tenant_id: r.status for r in rt.tenants.all()}
        stored.update(live)
        return [stored[t] for t in sorted(stored)]

    def local_statuses(self, timeout: float | None = None) -> list[TenantStatus]:
        """The statuses of the tenants this process runs, ordered by id (no database read)."""
        rt, deadline = self._call("local_statuses()", timeout)
        return rt.local.statuses(deadline)

    def qr(self, tenant_id: str, timeout: float | None = None) -> str | None:
        """The QR code the tenant shows while pairing (on whichever instance holds it), or None."""
        tenant_id = validate_tenant_id(tenant_id)
        rt, deadline = self._call(f"qr({tenant_id!r})", timeout)
        return rt.router.call(tenant_id, CallKind.QR, {}, deadline)

    def wait_for(
        self,
        tenant_id: str,
        state: TenantState | Iterable[TenantState],
        timeout: float | None = None,
    ) -> TenantStatus:
        """Block until the tenant is in ``state`` (or one of several) in this process; returns
        the status that matched, or raises OperationTimeout after ``timeout`` seconds."""
        tenant_id = validate_tenant_id(tenant_id)
        states = {TenantState(state)} if isinstance(state, str) else {TenantState(s) for s in state}
        names = "|".join(sorted(states))
        rt, deadline = self._call(f"wait_for({tenant_id!r}, {names})", timeout)
        waiter = m.WaitFor(tenant_id, frozenset(states))
        rt.registry.tell(waiter)
        if waiter.event.wait(deadline.timeout):
            return waiter.result[0]
        rt.registry.tell(m.CancelWait(waiter))
        raise OperationTimeout(deadline.what, deadline.timeout)

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback`` with every StatusEvent and InboundMessage; returns an unsubscriber.
        Callbacks run on one dispatcher thread; one that raises is logged and skipped."""
        return self.runtime.dispatcher.subscribe(callback)

    # --- processing locks and inbound dedup ----------------------------------------------

    @property
    def locks(self) -> ProcessingLocks:
        """Processing locks in this manager's database: ``claim(key, ttl)`` and
        ``hold(key, ttl, wait)``; see :mod:`wamgr.store.locks`. Raises ManagerStopped unless
        started."""
        return self.runtime.locks

    def seen(self, tenant_id: str, message_id: str) -> bool:
        """Record that ``tenant_id`` received ``message_id``: True the first time (process
        it), False for every later delivery, from any process (drop it).

        Ids are remembered for ``inbound_retention_s`` (7 days by default). Inbound messages
        from the transport already go through this before they reach subscribers, so calling
        it for an InboundMessage you were given answers False: use it for ids from elsewhere.
        """
        tenant_id = validate_tenant_id(tenant_id)
        return self.runtime.inbound_log.seen(tenant_id, message_id)

    # --- the service surface ----------------------------------------------------------

    def check_database(self) -> None:
        """Run one statement; raises DatabaseUnavailable (or ManagerStopped) if it fails."""
        self.runtime.db.ping()

    def leases_held(self) -> int:
        """How many unexpired leases this instance holds, as the database says."""
        return self.runtime.leases.count_live(self.config.instance_id)

    # --- internals ----------------------------------------------------------------------

    def _call(self, what: str, timeout: float | None) -> tuple[Runtime, Deadline]:
        """The runtime (ManagerStopped unless started) and a deadline for one call."""
        rt = self.runtime
        return rt, rt.local.deadline(what, timeout)

    def _metric_states(self) -> list[TenantState]:
        runtime = self._runtime
        if runtime is None or self._stopping:
            return []
        return list(runtime.local.states().values())
