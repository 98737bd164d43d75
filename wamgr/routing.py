"""Calls and commands for tenants held by other instances: sending them, and running those
sent here.

A command about a tenant whose live lease another instance holds is written to
``wamgr_commands`` for that instance (and NOTIFY wakes it); see :mod:`wamgr.store.commands`.
The receiving side is :meth:`CommandRouter.apply`, which the command listener calls for every
row addressed to this instance or to any instance. A connect this instance cannot take for
lack of capacity is left to the other instances' claim loops: the desired state is already
written, so the tenant is not lost.

A call with a reply (send a text, the QR, a pair code, clear the credentials) goes through
:meth:`CommandRouter.call`: run here if this instance runs the tenant or nobody holds it,
else forwarded to the holder (:class:`~wamgr.forwarding.Caller`) and its answer, or its named
error, returned. The holder's side is :meth:`CommandRouter.serve`, which the call runners
call for every call taken; both sides run a call the same way, through
:class:`TenantCalls`.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from loguru import logger

from wamgr.actors import messages as m
from wamgr.errors import (
    HeldElsewhere,
    NotConnected,
    NotPairing,
    OperationTimeout,
    UnknownTenant,
)
from wamgr.forwarding import Caller, CallKind, reply_of
from wamgr.local_tenants import Deadline, LocalTenants, ask
from wamgr.status import RUNNING_STATES, TenantStatus
from wamgr.store.calls import CallStore, PendingCall
from wamgr.store.commands import Command, CommandStore
from wamgr.store.leases import LeaseStore
from wamgr.store.tenants import TenantStore
from wamgr.workers.call_runners import CallRunners
from wamgr.workers.reply_listener import ReplyListener

#: Of the seconds a forwarded call has left, the share the holder keeps to write its reply
#: before the asker gives up (and at most REPLY_MARGIN_MAX_S seconds).
REPLY_MARGIN = 0.2
REPLY_MARGIN_MAX_S = 0.5


class TenantCalls:
    """The calls with a reply, run on this process's tenant actors (never forwarded)."""

    def __init__(
        self, instance_id: str, local: LocalTenants, tenants: TenantStore, leases: LeaseStore
    ):
        self._me = instance_id
        self._local = local
        self._tenants = tenants
        self._leases = leases

    def run(self, tenant_id: str, kind: CallKind, args: dict[str, Any], deadline: Deadline) -> Any:
        """Run ``kind`` with ``args`` here; its value, or its named error."""
        if kind is CallKind.SEND_TEXT:
            return self.send_text(tenant_id, args["to"], args["text"], deadline)
        if kind is CallKind.QR:
            ref = self._local.lookup(tenant_id, deadline)
            return None if ref is None else ask(ref, m.GetQr(), deadline)
        if kind is CallKind.PAIR_CODE:
            return self.pair_code(tenant_id, args["phone"], deadline)
        return self.clear_auth(tenant_id, deadline)

    def send_text(self, tenant_id: str, to: str, text: str, deadline: Deadline) -> str:
        """Send now through the local link; NotConnected naming the state otherwise."""
        ref = self._local.lookup(tenant_id, deadline)
        if ref is None:  # nobody else holds it live (or the call would have gone there)
            raise NotConnected(tenant_id, str(self.status(tenant_id, deadline).state))
        return ask(ref, m.SendText(to, text), deadline)

    def pair_code(self, tenant_id: str, phone: str, deadline: Deadline) -> str:
        """A pair code from the local link while pairing; NotPairing otherwise."""
        ref = self._local.lookup(tenant_id, deadline)
        if ref is None:
            raise NotPairing(tenant_id, str(self.status(tenant_id, deadline).state))
        return ask(ref, m.RequestPairCode(phone), deadline)

    def clear_auth(self, tenant_id: str, deadline: Deadline) -> TenantStatus:
        """Forget the device (the tenant's actor closes its link first); the new status.
        HeldElsewhere if another live instance took the tenant meanwhile."""
        if self._tenants.get(tenant_id) is None:
            raise UnknownTenant(tenant_id)
        ref = self._local.lookup(tenant_id, deadline)
        if ref is None:
            holder = self._leases.live_owner(tenant_id)
            if holder is not None and holder != self._me:
                raise HeldElsewhere(tenant_id, holder, "clear its credentials")
            ref = self._local.get_or_create(tenant_id, deadline)
        done = threading.Event()
        ask(ref, m.ClearAuth(done), deadline)
        if not done.wait(deadline.left()):
            raise OperationTimeout(deadline.what, deadline.timeout)
        return ask(ref, m.GetStatus(), deadline)

    def status(self, tenant_id: str, deadline: Deadline) -> TenantStatus:
        """Live if this process runs the tenant, else as stored; UnknownTenant if neither."""
        status = ask(self._local.registry, m.StatusOf(tenant_id), deadline)
        if status is not None:
            return status
        record = self._tenants.get(tenant_id)
        if record is None:
            raise UnknownTenant(tenant_id)
        return record.status


class CommandRouter:
    """Sends commands and calls to the holder of a tenant, and runs those sent here."""

    def __init__(
        self,
        instance_id: str,
        commands: CommandStore,
        tenants: TenantStore,
        local: LocalTenants,
        capacity: int | None = None,
        *,
        calls: CallStore,
        leases: LeaseStore,
        database_url: str,
    ):
        self._me = instance_id
        self._commands = commands
        self._tenants = tenants
        self._local = local
        self._capacity = capacity
        self._calls = calls
        #: The calls with a reply, run here.
        self.here = TenantCalls(instance_id, local, tenants, leases)
        self._replies = ReplyListener(calls, database_url)
        self._caller = Caller(calls, self._replies, instance_id)
        self._runners = CallRunners(self.serve)

    def start(self) -> None:
        """Start listening for replies, and the threads that run the calls sent here."""
        self._replies.start()
        self._runners.start()

    def stop(self, timeout: float) -> None:
        """End both within ``timeout`` seconds (a call under way here finishes first)."""
        end = time.monotonic() + timeout
        self._runners.stop(timeout)
        self._replies.stop(max(0.0, end - time.monotonic()))

    def submit(self, calls: list[PendingCall]) -> None:
        """Queue calls taken for this instance for the call runners; never blocks."""
        self._runners.submit(calls)

    def call(self, tenant_id: str, kind: CallKind, args: dict[str, Any], deadline: Deadline) -> Any:
        """Run ``kind`` where the tenant is held: here if this instance runs it (or nobody
        holds it), else on the holder. Its value, or the named error it raised (the same
        class either way); HolderNotAnswering naming the holder if it does not answer."""
        status = ask(self._local.registry, m.StatusOf(tenant_id), deadline)
        if status is None or status.state not in RUNNING_STATES:
            forwarded = self._caller.call(tenant_id, kind, args, deadline)
            if forwarded is not None:
                return forwarded.value
        return self.here.run(tenant_id, kind, args, deadline)

    def serve(self, call: PendingCall) -> None:
        """Run a call another instance forwarded here, and write the reply it waits for.

        The call runs within the seconds its asker has left, less a margin for the reply.
        """
        log = logger.bind(tenant=call.tenant_id)
        margin = min(REPLY_MARGIN_MAX_S, call.left_s * REPLY_MARGIN)
        what = f"{call.kind}({call.tenant_id!r}) for {call.sender}"
        try:
            deadline = Deadline(what, max(0.0, call.left_s - margin))
            value = self.here.run(call.tenant_id, CallKind(call.kind), call.args, deadline)
            reply = reply_of(value)
        except NotConnected as exc:  # the asker is told who holds the tenant
            reply = reply_of(error=NotConnected(exc.tenant_id, exc.state, exc.owner or self._me))
        except Exception as exc:
            log.debug("{} answered with {}", what, type(exc).__name__)
            reply = reply_of(error=exc)
        if not self._calls.reply(call.id, reply):
            log.info("{}: the asker gave up before the reply", what)

    def forward(self, tenant_id: str, command: Command) -> TenantStatus | None:
        """Send ``command`` to the live holder of the tenant if that is another instance.

        Returns the tenant's stored status when it was sent (the holder runs it), None when
        the command is this instance's to run.
        """
        target = self._commands.send(tenant_id, command, sender=self._me)
        if target is None:
            return None
        logger.bind(tenant=tenant_id).info("{} sent to {}, which holds the tenant", command, target)
        record = self._tenants.get(tenant_id)
        return record.status if record else None

    def apply(self, tenant_id: str, command: Command) -> None:
        """Run a command another instance (or the CLI) sent here; the desired state is written
        already. Does not wait for a link to close."""
        deadline = self._local.deadline(f"{command}({tenant_id!r})")
        if command in (Command.CONNECT, Command.RECONNECT):
            if self._no_room_for(tenant_id):
                logger.bind(tenant=tenant_id).warning(
                    "{} not taken: this instance runs its capacity of {} tenants; another "
                    "instance's claim loop connects it",
                    command,
                    self._capacity,
                )
                return
            ref = self._local.get_or_create(tenant_id, deadline)
            ask(ref, m.Connect() if command is Command.CONNECT else m.Reconnect(), deadline)
            return
        self._local.stop_later(tenant_id, do_logout=command is Command.LOGOUT)

    def _no_room_for(self, tenant_id: str) -> bool:
        """Whether connecting ``tenant_id`` here would take a lease beyond the capacity."""
        if self._capacity is None:
            return False
        states = self._local.states()
        if states.get(tenant_id) in RUNNING_STATES:
            return False  # it holds (or wants) its socket here already
        return sum(1 for state in states.values() if state in RUNNING_STATES) >= self._capacity
