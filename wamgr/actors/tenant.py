"""TenantActor: one per tenant per process; the only owner of the tenant's link.

Everything that can open or close a socket for the tenant is a message to this actor, so
they run one at a time and at most one link exists. ``connect`` never opens a second link:
with a link in any state (connecting, pairing, connected, closing) it answers with the
status. ``reconnect`` opens the new link only after the old one has reported closed.

Each link gets a new generation; events, decisions and retry timers that name an older
generation are dropped. The tenant takes its lease before the first link opens (see
:mod:`wamgr.actors.tenant_lease`) and gives it up when it stops or the policy says so. The
lease's fence lets the keeper close the link while this actor is busy. What follows a close
the tenant asked for is one ranked value (:mod:`wamgr.actors.after_close`). Once told
``Shutdown``, the tenant never opens a link again: commands that would raise ManagerStopped.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pykka
from loguru import logger

from wamgr.actors import messages as m
from wamgr.actors.after_close import AfterClose, PendingClose
from wamgr.actors.base import PooledDispatchingActor
from wamgr.actors.leases import LeaseLost
from wamgr.actors.tenant_device import CLEARED_BY_OPERATOR, TenantDevice
from wamgr.actors.tenant_lease import Outcome, TenantLease
from wamgr.actors.tenant_reporting import TenantReporting
from wamgr.actors.tenant_sending import TenantSending
from wamgr.actors.tenant_services import TenantServices
from wamgr.actors.tenant_status import StatusBook
from wamgr.actors.undecryptable import UndecryptableCounter
from wamgr.errors import JidInUse, ManagerStopped, NotPairing
from wamgr.status import PARKED_STATES, Desired, TenantState, TenantStatus
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
    Receipt,
    Undecryptable,
)

__all__ = ["TenantActor", "TenantServices"]  # TenantServices lives in tenant_services.py


class TenantActor(TenantSending, TenantReporting, PooledDispatchingActor):
    """Serialises one tenant's commands and link events (on the services' actor pool)."""

    commands = {
        m.Connect: "_on_connect",
        m.Reconnect: "_on_reconnect",
        m.Remove: "_on_remove",
        m.SendText: "_on_send_text",
        m.Send: "_on_send",
        m.DownloadMedia: "_on_download_media",
        m.GetStatus: "_on_get_status",
        m.GetQr: "_on_get_qr",
        m.ClearAuth: "_on_clear_auth",
        m.RequestPairCode: "_on_request_pair_code",
    }
    events = {
        **dict.fromkeys(
            (Qr, PairCode, Paired, Connected, Closed, MessageReceived, Receipt, Undecryptable),
            "_on_link_event",
        ),
        m.ApplyDecision: "_on_decision",
        LeaseLost: "_on_lease_lost",
        m.RetryDue: "_on_retry_due",
        m.Shutdown: "_on_shutdown",
    }

    def __init__(self, tenant_id: str, services: TenantServices, registry: pykka.ActorRef):
        super().__init__(services.pool)
        cfg = services.config
        self._id = tenant_id
        self._svc = services
        self._log = logger.bind(tenant=tenant_id)
        self._desired = Desired.STOPPED
        self._shut_down = False  # m.Shutdown arrived: no link opens again
        self._stop_when_closed = False  # ... and it asked the actor to end once closed
        self._book = StatusBook(
            tenant_id, cfg.instance_id, services.clock, registry, services.writer,
            services.show_status,
        )  # fmt: skip
        self._device = TenantDevice(tenant_id, services.tenants, services.transport, self._book)
        self._lease = TenantLease(tenant_id, cfg, services.clock, services.leases, services.keeper)
        limit, window = cfg.undecryptable_limit, cfg.undecryptable_window_s
        self._undecryptable = UndecryptableCounter(tenant_id, limit, window)
        # the link (at most one)
        self._generation = 0
        self._link: Link | None = None
        self._close = PendingClose()
        self._link_gone_waiters: list[m.Notice] = []
        self._connected_at: float | None = None
        self._qr: str | None = None
        # the generation whose supervisor decision or retry timer we wait for
        self._awaiting: int | None = None

    # --- commands ---------------------------------------------------------------------

    def _on_connect(self, message: m.Connect) -> TenantStatus:
        claimed = message.claimed  # read and granted by a claim pass or connect(), if any
        parked = (  # a claim pass's connect leaves a parked tenant for an operator
            claimed is not None and not message.manual and self._book.state in PARKED_STATES
        )
        if self._shut_down or self._link is not None or self._awaiting is not None or parked:
            self._lease.give_back(claimed)  # not used: no other instance waits for it
        if self._shut_down:  # no link opens again
            raise ManagerStopped()
        if parked:  # parked here after the claim pass read the store: only a connect() undoes it
            return self._status()
        self._device.load(claimed)
        self._desired = Desired.CONNECTED
        if self._link is not None:
            if self._close.under_way:  # reopen once this one has closed
                self._close.want(AfterClose.REOPEN)
            return self._status()
        if self._awaiting is not None:
            return self._status()  # a decision or a scheduled retry is on its way
        self._book.attempt = 0
        self._open_link(claimed)
        return self._status()

    def _on_reconnect(self, _: m.Reconnect) -> TenantStatus:
        if self._shut_down:  # no link opens again
            raise ManagerStopped()
        self._device.load()
        self._desired = Desired.CONNECTED
        self._awaiting = None
        self._book.attempt = 0
        if self._close_then(AfterClose.REOPEN):
            self._set_state(TenantState.CONNECTING)  # the old link is on its way out
            return self._status()
        self._open_link()
        return self._status()

    def _on_remove(self, message: m.Remove) -> TenantStatus:
        self._device.load()
        self._desired = Desired.STOPPED
        self._awaiting = None
        if self._close_then(AfterClose.STOP, message.done, do_logout=message.do_logout):
            return self._status()
        if message.do_logout:
            self._device.clear("removed with logout while not connected")
        self._lease.release()
        self._set_state(TenantState.STOPPED, attempt=0, next_retry_at=None, last_error=None)
        message.done.set()
        return self._status()

    def _on_clear_auth(self, message: m.ClearAuth) -> TenantStatus:
        self._device.load()
        self._awaiting = None
        if self._close_then(AfterClose.CLEAR_AUTH, message.done):
            return self._status()
        self._park_without_auth()
        message.done.set()
        return self._status()

    def _on_request_pair_code(self, message: m.RequestPairCode) -> str:
        if self._link is None or self._book.state is not TenantState.PAIRING:
            raise NotPairing(self._id, str(self._book.state))
        code = self._link.request_pair_code(message.phone)
        self._log.info("pair code requested for phone ending {}", message.phone[-4:])
        return code

    def _on_get_status(self, _: m.GetStatus) -> TenantStatus:
        return self._status()

    def _on_get_qr(self, _: m.GetQr) -> str | None:
        return self._qr

    # --- events -----------------------------------------------------------------------

    def _on_shutdown(self, message: m.Shutdown) -> None:
        self._shut_down = True
        self._stop_when_closed = message.stop
        self._awaiting = None
        if self._close_then(AfterClose.SHUTDOWN, message.done):
            return
        self._lease.hand_back()  # the manager releases every closed tenant's lease at once
        if self._book.state not in PARKED_STATES:
            self._set_state(TenantState.STOPPED, owner=None, next_retry_at=None)
        self._link_gone([message.done])

    def _on_link_event(self, event: LinkEvent) -> None:
        if self._link is None or event.generation != self._generation:
            self._log.debug("dropped {!r} from an old link", event)
            return
        match event:
            case Qr(code=code) | PairCode(code=code):
                self._qr = code
                self._set_state(TenantState.PAIRING)
            case Paired(jid=jid):
                if self._keep_device(jid):
                    self._log.info("paired as {}", jid)
            case Connected(jid=jid):
                if jid != self._device.jid and not self._keep_device(jid):
                    return
                self._connected_at = self._svc.clock.monotonic()
                self._qr = None
                if self._svc.metrics is not None:
                    self._svc.metrics.link_connected()
                self._set_state(TenantState.CONNECTED, last_error=None, next_retry_at=None)
                self._log.info("connected as {}", jid)
            case MessageReceived() | Receipt():
                self._svc.on_inbound(self._id, event)
            case Undecryptable():
                if self._undecryptable.too_many(self._svc.clock.monotonic()):
                    self._close_link(do_logout=False, cause=CloseReason.CORRUPTED_KEYS)
            case Closed():
                self._on_closed(event)

    def _on_decision(self, message: m.ApplyDecision) -> None:
        if self._awaiting != message.generation or self._link is not None:
            self._log.debug("dropped a stale decision for link {}", message.generation)
            return
        decision = message.decision
        if decision.clear_auth:
            self._device.clear(decision.error)
        if decision.release_lease:
            self._lease.release()
        if message.retry_at is None:
            self._awaiting = None
        self._set_state(
            decision.state,
            attempt=decision.attempt,
            next_retry_at=message.retry_at,
            last_error=decision.error,
        )

    def _on_retry_due(self, message: m.RetryDue) -> None:
        if self._awaiting != message.generation or self._link is not None:
            return
        self._awaiting = None
        if self._desired is Desired.CONNECTED and not self._shut_down:
            if self._svc.metrics is not None:
                self._svc.metrics.backoff_attempt()
            self._open_link()

    def _on_lease_lost(self, message: LeaseLost) -> None:
        if not self._lease.lost(message.token):
            return
        if self._link is not None:  # the fence closed it already; this records why
            self._close_link(do_logout=False, cause=CloseReason.LEASE_LOST)
            return
        self._awaiting = None  # no retry either: whoever holds the lease now runs the tenant
        self._set_state(
            TenantState.STANDBY, owner=None, next_retry_at=None, last_error="lease lost"
        )

    # --- the link ---------------------------------------------------------------------

    def _open_link(self, claimed: m.Claimed | None = None) -> None:
        take = self._lease.take(self.actor_ref, claimed)
        if take.outcome is Outcome.UNAVAILABLE:
            self._report_failure(CloseReason.DIAL_FAILED, take.detail)
            return
        if take.outcome is not Outcome.GRANTED:
            self._set_state(TenantState.STANDBY, owner=take.owner, last_error=take.detail)
            return
        self._generation += 1
        generation = self._generation
        self._connected_at = None
        self._qr = None
        self._undecryptable.clear()
        try:
            proxy = claimed.proxy if claimed else self._svc.proxy_of(self._id)  # at each dial
            link = self._svc.transport.create_link(
                self._id, self._device.jid, generation, self._deliver, proxy=proxy
            )
        except Exception as exc:
            self._log.opt(exception=exc).warning("building a link failed")
            self._report_failure(CloseReason.DIAL_FAILED, f"{type(exc).__name__}: {exc}")
            return
        if not self._lease.arm(link):
            self._lease.forget()
            self._set_state(TenantState.STANDBY, owner=None, last_error="lease lost")
            return
        self._link = link
        self._set_state(TenantState.CONNECTING, owner=self._svc.config.instance_id)
        try:
            link.open()
        except Exception as exc:
            if self._lease.fenced:  # closed by the keeper before it opened; Closed follows
                self._close.begin(do_logout=False, cause=CloseReason.LEASE_LOST)
                return
            self._log.opt(exception=exc).warning("opening a link failed")
            self._link = None
            self._report_failure(CloseReason.DIAL_FAILED, f"{type(exc).__name__}: {exc}")
            return
        self._log.debug("opened link {} ({})", generation, self._device.jid or "new device")

    def _deliver(self, event: LinkEvent) -> None:
        """The links' event callback (any thread): into this actor's mailbox."""
        with contextlib.suppress(pykka.ActorDeadError):  # stopped: nothing to tell
            self.actor_ref.tell(event)

    def _close_link(self, do_logout: bool, cause: CloseReason | None = None) -> None:
        if self._link is not None and self._close.begin(do_logout, cause):
            self._link.close(do_logout)

    def _keep_device(self, jid: str) -> bool:
        """Store the device the link paired as; if another tenant is paired as it, close the
        link without logout (a logout would unlink that tenant's device) and return False."""
        try:
            self._device.store(jid)
        except JidInUse as exc:
            if self._link is not None and self._close.begin(
                False, CloseReason.DEVICE_IN_USE, str(exc)
            ):
                self._log.warning("refused device {}: {}", jid, exc)
                self._link.close(do_logout=False)
            return False
        return True

    def _close_then(
        self, after: AfterClose, done: m.Notice | None = None, do_logout: bool = False
    ) -> bool:
        """Close the link (if any) and do ``after`` once it reported closed (``done`` is set
        then); False if there is no link."""
        if self._link is None:
            return False
        self._close.want(after)
        if done is not None:
            self._link_gone_waiters.append(done)
        self._close_link(do_logout)
        return True

    def _on_closed(self, event: Closed) -> None:
        now = self._svc.clock.monotonic()
        uptime = now - self._connected_at if self._connected_at is not None else 0.0
        result = self._close.end(event.reason, fenced=self._lease.fenced)
        self._link = None
        self._connected_at = None
        self._qr = None
        waiters, self._link_gone_waiters = self._link_gone_waiters, []
        if self._svc.metrics is not None:
            self._svc.metrics.link_closed(str(result.failure or CloseReason.REQUESTED))
        try:
            if result.logout:
                self._device.clear("logged out on request")
            if result.failure is not None:
                self._report_close(result.failure, event, uptime, result.detail)
            elif result.after is AfterClose.REOPEN and self._desired is Desired.CONNECTED:
                self._open_link()
            else:
                self._stop_after_close(result.after)
        finally:
            self._link_gone(waiters)

    def _link_gone(self, waiters: list[m.Notice]) -> None:
        """Tell ``waiters`` the link is gone; then end at once, if a Shutdown asked."""
        for done in waiters:
            done.set()
        if self._stop_when_closed and self._link is None:
            self.stop_now()

    def _stop_after_close(self, after: AfterClose) -> None:
        """Stop as ``after`` says (a REOPEN no longer wanted stops as STOP)."""
        if after is AfterClose.CLEAR_AUTH:
            self._park_without_auth()
        elif after is AfterClose.SHUTDOWN:
            self._lease.hand_back()  # the manager releases every closed tenant's lease at once
            self._set_state(TenantState.STOPPED, owner=None, next_retry_at=None)
        else:
            self._lease.release()
            self._set_state(TenantState.STOPPED, attempt=0, next_retry_at=None, last_error=None)

    # --- state, auth ------------------------------------------------------------------

    def _park_without_auth(self) -> None:
        """Forget the device, give up the lease, wait in logged_out for a connect to re-pair."""
        self._device.clear("cleared by the operator")
        self._lease.release()
        self._set_state(
            TenantState.LOGGED_OUT,
            attempt=0,
            next_retry_at=None,
            last_error=CLEARED_BY_OPERATOR,
        )

    def _set_state(self, state: TenantState, **changes: Any) -> None:
        active = state is TenantState.CONNECTED and self._link is not None
        old = self._book.change(
            state, holding_lease=self._lease.token is not None, active=active, **changes
        )
        if old is not state:
            self._log.debug("{} -> {}", old, state)

    def _status(self) -> TenantStatus:
        return self._book.snapshot()
