"""TenantActor: one per tenant per process; the only owner of the tenant's link.

Everything that can open or close a socket for the tenant is a message to this actor, so
they run one at a time and at most one link exists. ``connect`` never opens a second link:
with a link in any state (connecting, pairing, connected, closing) it answers with the
status. ``reconnect`` opens the new link only after the old one has reported closed.

Each link gets a new generation; events, decisions and retry timers that name an older
generation are dropped. The tenant takes its lease before the first link opens and gives it
up when it stops or the policy says so.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pykka
from loguru import logger

from wamgr.actors.base import DispatchingActor
from wamgr.actors.leases import LeaseDropped, LeaseGranted, LeaseLost
from wamgr.actors.messages import (
    ApplyDecision,
    ClearAuth,
    Connect,
    GetQr,
    GetStatus,
    LinkClosed,
    Reconnect,
    Remove,
    RequestPairCode,
    RetryDue,
    SendText,
    Shutdown,
    StatusChanged,
)
from wamgr.clock import Clock, utc_from_timestamp
from wamgr.config import Config
from wamgr.errors import DatabaseUnavailable, NotConnected, NotPairing
from wamgr.status import Desired, TenantState, TenantStatus
from wamgr.store.leases import LeaseStore
from wamgr.store.tenants import TenantStore
from wamgr.transport.base import (
    Closed,
    CloseReason,
    Connected,
    Link,
    LinkEvent,
    MessageReceived,
    PairCode,
    Paired,
    Qr,
    Transport,
    Undecryptable,
)
from wamgr.workers.status_writer import StatusWriter

if TYPE_CHECKING:
    from wamgr.metrics import Metrics

#: States that wait for an operator (or a ban's expiry); shutdown leaves them as they are.
_PARKED = frozenset(
    {TenantState.CONFLICT, TenantState.LOGGED_OUT, TenantState.FAILED, TenantState.BANNED}
)


@dataclass(frozen=True)
class TenantServices:
    """What every tenant actor of a manager shares (all thread-safe or actor refs)."""

    config: Config
    clock: Clock
    transport: Transport
    tenants: TenantStore
    leases: LeaseStore
    writer: StatusWriter
    supervisor: pykka.ActorRef
    keeper: pykka.ActorRef
    on_inbound: Callable[[str, MessageReceived], None]
    metrics: Metrics | None = None


class TenantActor(DispatchingActor):
    """Serialises connect / reconnect / remove / send / link events of one tenant."""

    commands = {
        Connect: "_on_connect",
        Reconnect: "_on_reconnect",
        Remove: "_on_remove",
        SendText: "_on_send_text",
        GetStatus: "_on_get_status",
        GetQr: "_on_get_qr",
        ClearAuth: "_on_clear_auth",
        RequestPairCode: "_on_request_pair_code",
    }
    events = {
        Qr: "_on_link_event",
        PairCode: "_on_link_event",
        Paired: "_on_link_event",
        Connected: "_on_link_event",
        Closed: "_on_link_event",
        MessageReceived: "_on_link_event",
        Undecryptable: "_on_link_event",
        ApplyDecision: "_on_decision",
        LeaseLost: "_on_lease_lost",
        RetryDue: "_on_retry_due",
        Shutdown: "_on_shutdown",
    }

    def __init__(self, tenant_id: str, services: TenantServices, registry: pykka.ActorRef):
        super().__init__()
        self._id = tenant_id
        self._svc = services
        self._registry = registry
        self._log = logger.bind(tenant=tenant_id)
        self._loaded = False
        # what is wanted, and the status shown
        self._desired = Desired.STOPPED
        self._state = TenantState.STOPPED
        self._jid: str | None = None
        self._owner: str | None = None
        self._attempt = 0
        self._next_retry_at: float | None = None
        self._last_error: str | None = None
        self._updated_at: float | None = None
        # the link (at most one)
        self._generation = 0
        self._link: Link | None = None
        self._closing = False  # close() was called on the current link
        self._close_cause: CloseReason | None = None  # a failure we closed the link for
        self._connected_at: float | None = None
        self._qr: str | None = None
        self._reopen_after_close = False
        self._logout_clears_auth = False
        self._clear_auth_after_close = False
        self._shutting_down = False
        self._link_gone_waiters: list[threading.Event] = []
        # the generation whose supervisor decision or retry timer we wait for
        self._awaiting: int | None = None
        self._lease_token: int | None = None
        self._undecryptable_times: deque[float] = deque()

    # --- commands ---------------------------------------------------------------------

    def _on_connect(self, _: Connect) -> TenantStatus:
        self._load()
        self._desired = Desired.CONNECTED
        self._shutting_down = False
        if self._link is not None:
            if self._closing:
                self._reopen_after_close = True
            return self._status()
        if self._awaiting is not None:
            return self._status()  # a decision or a scheduled retry is on its way
        self._attempt = 0
        self._open_link()
        return self._status()

    def _on_reconnect(self, _: Reconnect) -> TenantStatus:
        self._load()
        self._desired = Desired.CONNECTED
        self._shutting_down = False
        self._awaiting = None
        self._attempt = 0
        if self._link is not None:
            self._reopen_after_close = True
            self._close_link(do_logout=False)
            self._set_state(TenantState.CONNECTING)  # the old link is on its way out
            return self._status()
        self._open_link()
        return self._status()

    def _on_remove(self, message: Remove) -> TenantStatus:
        self._load()
        self._desired = Desired.STOPPED
        self._reopen_after_close = False
        self._awaiting = None
        if self._link is not None:
            if message.do_logout:
                self._logout_clears_auth = True
            self._link_gone_waiters.append(message.done)
            self._close_link(do_logout=message.do_logout)
            return self._status()
        if message.do_logout:
            self._clear_auth("removed with logout while not connected")
        self._release_lease()
        self._set_state(TenantState.STOPPED, attempt=0, next_retry_at=None, last_error=None)
        message.done.set()
        return self._status()

    def _on_send_text(self, message: SendText) -> str:
        if self._link is None or self._state is not TenantState.CONNECTED:
            raise NotConnected(self._id, str(self._state))
        message_id = self._link.send_text(message.to, message.text)
        self._log.debug("sent message {} to {}", message_id, message.to)
        return message_id

    def _on_clear_auth(self, message: ClearAuth) -> TenantStatus:
        self._load()
        self._reopen_after_close = False
        self._awaiting = None
        if self._link is not None:
            self._clear_auth_after_close = True
            self._link_gone_waiters.append(message.done)
            self._close_link(do_logout=False)
            return self._status()
        self._park_without_auth()
        message.done.set()
        return self._status()

    def _on_request_pair_code(self, message: RequestPairCode) -> str:
        if self._link is None or self._state is not TenantState.PAIRING:
            raise NotPairing(self._id, str(self._state))
        code = self._link.request_pair_code(message.phone)
        self._log.info("pair code requested for phone ending {}", message.phone[-4:])
        return code

    def _on_get_status(self, _: GetStatus) -> TenantStatus:
        return self._status()

    def _on_get_qr(self, _: GetQr) -> str | None:
        return self._qr

    # --- events -----------------------------------------------------------------------

    def _on_shutdown(self, message: Shutdown) -> None:
        self._shutting_down = True
        self._reopen_after_close = False
        self._awaiting = None
        if self._link is not None:
            self._link_gone_waiters.append(message.done)
            self._close_link(do_logout=False)
            return
        self._forget_lease()  # the manager releases every closed tenant's lease at once
        if self._state not in _PARKED:
            self._set_state(TenantState.STOPPED, owner=None, next_retry_at=None)
        message.done.set()

    def _on_link_event(self, event: LinkEvent) -> None:
        if self._link is None or event.generation != self._generation:
            self._log.debug("dropped {!r} from an old link", event)
            return
        match event:
            case Qr(code=code) | PairCode(code=code):
                self._qr = code
                self._set_state(TenantState.PAIRING)
            case Paired(jid=jid):
                self._store_jid(jid)
                self._log.info("paired as {}", jid)
            case Connected(jid=jid):
                if jid != self._jid:
                    self._store_jid(jid)
                self._connected_at = self._svc.clock.monotonic()
                self._qr = None
                if self._svc.metrics is not None:
                    self._svc.metrics.link_connected()
                self._set_state(TenantState.CONNECTED, last_error=None, next_retry_at=None)
                self._log.info("connected as {}", jid)
            case MessageReceived():
                self._svc.on_inbound(self._id, event)
            case Undecryptable():
                self._count_undecryptable()
            case Closed():
                self._on_closed(event)

    def _on_decision(self, message: ApplyDecision) -> None:
        if self._awaiting != message.generation or self._link is not None:
            self._log.debug("dropped a stale decision for link {}", message.generation)
            return
        decision = message.decision
        if decision.clear_auth:
            self._clear_auth(decision.error)
        if decision.release_lease:
            self._release_lease()
        if message.retry_at is None:
            self._awaiting = None
        self._set_state(
            decision.state,
            attempt=decision.attempt,
            next_retry_at=message.retry_at,
            last_error=decision.error,
        )

    def _on_retry_due(self, message: RetryDue) -> None:
        if self._awaiting != message.generation or self._link is not None:
            return
        self._awaiting = None
        if self._desired is Desired.CONNECTED and not self._shutting_down:
            if self._svc.metrics is not None:
                self._svc.metrics.backoff_attempt()
            self._open_link()

    def _on_lease_lost(self, message: LeaseLost) -> None:
        if message.token != self._lease_token:
            return  # an older grant; the current one is fine
        self._lease_token = None
        if self._link is not None:
            self._close_link(do_logout=False, cause=CloseReason.LEASE_LOST)
            return
        self._awaiting = None  # no retry either: whoever holds the lease now runs the tenant
        self._set_state(
            TenantState.STANDBY, owner=None, next_retry_at=None, last_error="lease lost"
        )

    # --- the link ---------------------------------------------------------------------

    def _open_link(self) -> None:
        if not self._take_lease():
            return
        self._generation += 1
        generation = self._generation
        self._closing = False
        self._close_cause = None
        self._connected_at = None
        self._qr = None
        self._undecryptable_times.clear()
        me = self.actor_ref
        try:
            self._link = self._svc.transport.create_link(self._id, self._jid, generation, me.tell)
            self._set_state(TenantState.CONNECTING, owner=self._svc.config.instance_id)
            self._link.open()
        except Exception as exc:
            self._log.opt(exception=exc).warning("opening a link failed")
            self._link = None
            self._report_failure(CloseReason.DIAL_FAILED, f"{type(exc).__name__}: {exc}")
            return
        self._log.debug("opened link {} ({})", generation, self._jid or "new device")

    def _close_link(self, do_logout: bool, cause: CloseReason | None = None) -> None:
        if self._link is None or self._closing:
            return
        self._closing = True
        self._close_cause = cause
        self._link.close(do_logout)

    def _on_closed(self, event: Closed) -> None:
        now = self._svc.clock.monotonic()
        uptime = now - self._connected_at if self._connected_at is not None else 0.0
        requested = self._closing and self._close_cause is None
        cause = self._close_cause or event.reason
        self._link = None
        self._closing = False
        self._close_cause = None
        self._connected_at = None
        self._qr = None
        waiters, self._link_gone_waiters = self._link_gone_waiters, []
        if self._svc.metrics is not None:
            self._svc.metrics.link_closed(str(CloseReason.REQUESTED if requested else cause))
        try:
            if requested:
                self._after_requested_close()
            else:
                if cause is CloseReason.REQUESTED:  # the link closed itself without saying why
                    cause = CloseReason.NETWORK
                if cause is CloseReason.REPLACED and self._replaced_by_successor():
                    cause = CloseReason.LEASE_LOST
                self._log.warning("link closed: {} {}", cause, event.detail)
                self._report_failure(
                    cause, event.detail, uptime_s=uptime, ban_expires_in_s=event.ban_expires_in_s
                )
        finally:
            for done in waiters:
                done.set()

    def _replaced_by_successor(self) -> bool:
        """Whether the socket that replaced ours is another wamgr instance's, holding the lease.

        That happens when this process was paused past its lease: the successor is legitimate
        and this tenant must stand by, not park in ``conflict`` as for a rogue client.
        """
        token = self._lease_token
        try:
            holder = self._svc.leases.holder(self._id)
        except DatabaseUnavailable:
            return False  # cannot tell: treat it as a conflict, which never reconnects
        if holder is None or token is None or holder.token == token:
            return False
        self._log.warning("replaced by {}, which holds the lease now: standing by", holder.owner)
        self._forget_lease()
        return True

    def _after_requested_close(self) -> None:
        if self._clear_auth_after_close:
            self._clear_auth_after_close = False
            self._park_without_auth()
            return
        if self._logout_clears_auth:
            self._logout_clears_auth = False
            self._clear_auth("logged out on request")
        if self._shutting_down:
            self._forget_lease()  # the manager releases every closed tenant's lease at once
            self._set_state(TenantState.STOPPED, owner=None, next_retry_at=None)
        elif self._desired is Desired.CONNECTED and self._reopen_after_close:
            self._reopen_after_close = False
            self._open_link()
        else:
            self._release_lease()
            self._set_state(TenantState.STOPPED, attempt=0, next_retry_at=None, last_error=None)

    def _report_failure(
        self,
        reason: CloseReason,
        detail: str,
        *,
        uptime_s: float = 0.0,
        ban_expires_in_s: float | None = None,
    ) -> None:
        """Hand a failed or dropped link to the supervisor; its decision comes back later."""
        self._awaiting = self._generation
        self._publish(active=False)
        self._svc.supervisor.tell(
            LinkClosed(
                tenant_id=self._id,
                tenant=self.actor_ref,
                generation=self._generation,
                reason=reason,
                detail=detail,
                uptime_s=uptime_s,
                attempt=self._attempt,
                ban_expires_in_s=ban_expires_in_s,
            )
        )

    def _count_undecryptable(self) -> None:
        cfg = self._svc.config
        now = self._svc.clock.monotonic()
        times = self._undecryptable_times
        times.append(now)
        while times and times[0] < now - cfg.undecryptable_window_s:
            times.popleft()
        if len(times) > cfg.undecryptable_limit:
            self._log.error(
                "{} undecryptable messages within {:g} s: the keys look corrupted",
                len(times),
                cfg.undecryptable_window_s,
            )
            times.clear()
            self._close_link(do_logout=False, cause=CloseReason.CORRUPTED_KEYS)

    # --- state, lease, auth -----------------------------------------------------------

    def _load(self) -> None:
        if self._loaded:
            return
        record = self._svc.tenants.get(self._id)
        if record is not None:
            self._jid = record.status.jid
        self._loaded = True

    def _store_jid(self, jid: str | None) -> None:
        self._jid = jid
        try:
            self._svc.tenants.set_jid(self._id, jid)
        except DatabaseUnavailable as exc:
            self._log.error("could not store jid {}: {}", jid, exc.detail)

    def _clear_auth(self, why: str) -> None:
        if self._jid is None:
            return
        self._log.warning("clearing credentials of {} ({})", self._jid, why)
        try:
            self._svc.transport.clear_auth(self._id, self._jid)
        except Exception:
            self._log.exception("clearing the device credentials failed")
        self._store_jid(None)

    def _take_lease(self) -> bool:
        """(Re)take the lease right before a link opens; False (and standby) if held elsewhere.

        Taking it again although we hold it costs one statement and proves, at the moment it
        matters, that no other instance took it over meanwhile (say, while we were paused).
        """
        cfg = self._svc.config
        sent_at = self._svc.clock.monotonic()
        try:
            token = self._svc.leases.acquire(self._id, cfg.instance_id, cfg.lease_ttl_s)
            holder = None if token is not None else self._svc.leases.holder(self._id)
        except DatabaseUnavailable as exc:
            self._log.warning("cannot take the lease: {}", exc.detail)
            self._report_failure(CloseReason.DIAL_FAILED, f"lease check failed: {exc.detail}")
            return False
        if token is None:
            self._forget_lease()
            owner = holder.owner if holder else None
            self._log.info("lease held by {}; standing by", owner)
            self._set_state(TenantState.STANDBY, owner=owner, last_error=f"lease held by {owner}")
            return False
        self._lease_token = token
        self._svc.keeper.tell(LeaseGranted(self._id, token, self.actor_ref, sent_at))
        return True

    def _forget_lease(self) -> None:
        token, self._lease_token = self._lease_token, None
        if token is not None:
            self._svc.keeper.tell(LeaseDropped(self._id, token))

    def _park_without_auth(self) -> None:
        """Forget the device, give up the lease, wait in logged_out for a connect to re-pair."""
        self._clear_auth("cleared by the operator")
        self._release_lease()
        self._set_state(
            TenantState.LOGGED_OUT,
            attempt=0,
            next_retry_at=None,
            last_error="credentials cleared by the operator: connect to pair again",
        )

    def _release_lease(self) -> None:
        token = self._lease_token
        self._forget_lease()
        if token is None:
            return
        try:
            self._svc.leases.release(self._id, token)
        except DatabaseUnavailable as exc:
            self._log.warning("could not release the lease (it expires by itself): {}", exc.detail)

    def _set_state(self, state: TenantState, **changes: Any) -> None:
        old = self._state
        self._state = state
        if "owner" in changes:
            self._owner = changes["owner"]
        elif self._lease_token is not None:
            self._owner = self._svc.config.instance_id
        elif state is not TenantState.STANDBY:
            self._owner = None
        if "attempt" in changes:
            self._attempt = changes["attempt"]
        if "next_retry_at" in changes:
            self._next_retry_at = changes["next_retry_at"]
        if "last_error" in changes:
            self._last_error = changes["last_error"]
        self._updated_at = self._svc.clock.time()
        if old is not state:
            self._log.debug("{} -> {}", old, state)
        status = self._publish(active=state is TenantState.CONNECTED and self._link is not None)
        self._svc.writer.submit(status, str(old))

    def _publish(self, active: bool) -> TenantStatus:
        status = self._status()
        self._registry.tell(StatusChanged(status, active))
        return status

    def _status(self) -> TenantStatus:
        return TenantStatus(
            tenant_id=self._id,
            state=self._state,
            jid=self._jid,
            owner=self._owner,
            attempt=self._attempt,
            next_retry_at=(
                utc_from_timestamp(self._next_retry_at) if self._next_retry_at is not None else None
            ),
            last_error=self._last_error,
            updated_at=utc_from_timestamp(self._updated_at) if self._updated_at else None,
        )
