"""AsyncConnectionManager: the ConnectionManager's calls as coroutines, for asyncio services.

    async with AsyncConnectionManager(Config(database_url=url)) as mgr:
        await mgr.connect("t1")
        await mgr.wait_for("t1", TenantState.CONNECTED, timeout=10)
        await mgr.send_text("t1", "15550001111", "hi")

It never blocks the event loop. Each call runs the blocking one on a bounded pool of
threads (``max_threads``) and awaits it; ``wait_for`` holds no thread at all (it awaits the
manager's status events on the loop); starting and stopping run on threads of their own.
Cancelling an awaiting task never leaves a waiter behind: a call still queued for a thread
is dropped, one already running ends within its timeout on its thread (its effect, such
as a message sent, stands), and a ``wait_for`` simply stops waiting.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from typing import Any, ParamSpec, TypeVar

from wamgr.aio.events import AsyncSubscriber, LoopEvents
from wamgr.aio.locks import AsyncProcessingLocks
from wamgr.aio.offload import DEFAULT_MAX_THREADS, OffLoop, start_thread
from wamgr.config import Config
from wamgr.errors import ManagerStopped
from wamgr.manager import STOP_BUDGET_S, ConnectionManager
from wamgr.metrics import Metrics
from wamgr.status import TenantState, TenantStatus, validate_tenant_id
from wamgr.store.outbound import OutboundMessage
from wamgr.tenant_settings import TenantSettings
from wamgr.transport.media_fetch import MediaUrl
from wamgr.transport.outgoing import Outgoing

P = ParamSpec("P")
T = TypeVar("T")


class AsyncConnectionManager:
    """A :class:`~wamgr.manager.ConnectionManager` for asyncio: same calls, same errors,
    as coroutines. Bound to the loop that starts it.

    ``config`` is a Config (a ConnectionManager is made from it) or a ConnectionManager
    (started or not; this one stops it). Use ``async with``, or await :meth:`start` and
    :meth:`stop`.
    """

    def __init__(
        self, config: Config | ConnectionManager, /, *, max_threads: int = DEFAULT_MAX_THREADS
    ):
        self._mgr = config if isinstance(config, ConnectionManager) else ConnectionManager(config)
        self._max_threads = max_threads
        self._offload: OffLoop | None = None
        self._events: LoopEvents | None = None
        self._unsubscribe: Callable[[], None] | None = None

    # --- life cycle ---------------------------------------------------------------------

    async def __aenter__(self) -> AsyncConnectionManager:
        return await self.start()

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    async def start(self) -> AsyncConnectionManager:
        """Start the manager (on a thread of its own) and bind it to the running loop.

        Cancelled while starting, the start gives up at its next step, stops what it
        started, and the cancellation goes on. Started already: returns at once.
        """
        if self._events is not None:
            return self
        cancelled = threading.Event()
        starting = start_thread("wamgr-aio-start", lambda: self._mgr.start(cancelled.is_set))
        try:
            await asyncio.wrap_future(starting)
        except asyncio.CancelledError:
            cancelled.set()  # the start gives up at its next step and stops what it started
            ended = asyncio.wrap_future(starting)
            await asyncio.wait([ended])
            # (StartCancelled, read here so no "exception never retrieved" is logged later)
            if not ended.cancelled() and ended.exception() is None:  # it was done already
                await asyncio.wrap_future(start_thread("wamgr-aio-stop", self._mgr.stop))
            raise
        loop = asyncio.get_running_loop()
        offload, events = OffLoop(loop, self._max_threads), LoopEvents(loop)
        try:
            self._unsubscribe = self._mgr.subscribe(events.on_event)
            events.seed(await offload.run(self._mgr.local_statuses))
        except BaseException:
            await asyncio.wrap_future(start_thread("wamgr-aio-stop", self._mgr.stop))
            await asyncio.wrap_future(start_thread("wamgr-aio-stop", offload.shutdown))
            raise
        self._offload, self._events = offload, events
        return self

    async def stop(self, timeout: float = STOP_BUDGET_S) -> None:
        """Stop the manager: close every link without logout, release every lease, end the
        pool's threads, deliver what is queued for the subscribers. Pending ``wait_for``
        calls and calls made meanwhile raise ManagerStopped. At most ``timeout`` seconds
        for the manager, and as long again for calls under way and subscribers."""
        events, offload = self._events, self._offload
        if events is None or offload is None:
            return
        self._events = self._offload = None  # from here on calls raise ManagerStopped
        events.fail_waiters()

        def stop_all() -> None:
            try:
                self._mgr.stop(timeout)
            finally:
                offload.shutdown()  # calls under way end fast: the manager refuses them now

        await asyncio.shield(asyncio.wrap_future(start_thread("wamgr-aio-stop", stop_all)))
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        await events.close(timeout)

    # --- what it wraps --------------------------------------------------------------------

    @property
    def manager(self) -> ConnectionManager:
        """The blocking manager underneath (e.g. for ``wamgr.api.app.create_app``)."""
        return self._mgr

    @property
    def config(self) -> Config:
        """The manager's settings."""
        return self._mgr.config

    @property
    def metrics(self) -> Metrics:
        """The manager's Prometheus metrics (``metrics.render()``)."""
        return self._mgr.metrics

    @property
    def locks(self) -> AsyncProcessingLocks:
        """Processing locks in the manager's database, as coroutines (ManagerStopped unless
        started)."""
        return AsyncProcessingLocks(self._mgr.locks, self._running()[0])

    # --- commands -------------------------------------------------------------------------

    async def connect(self, tenant_id: str, timeout: float | None = None) -> TenantStatus:
        """:meth:`ConnectionManager.connect`: connected, with at most one socket."""
        return await self._off_loop(self._mgr.connect, tenant_id, timeout)

    async def reconnect(self, tenant_id: str, timeout: float | None = None) -> TenantStatus:
        """:meth:`ConnectionManager.reconnect`: close the link (no logout), open a new one."""
        return await self._off_loop(self._mgr.reconnect, tenant_id, timeout)

    async def remove(
        self, tenant_id: str, do_logout: bool = False, timeout: float | None = None
    ) -> TenantStatus | None:
        """:meth:`ConnectionManager.remove`: stop the tenant, returning once its link is gone."""
        return await self._off_loop(self._mgr.remove, tenant_id, do_logout, timeout)

    async def clear_auth(self, tenant_id: str, timeout: float | None = None) -> TenantStatus:
        """:meth:`ConnectionManager.clear_auth`: forget the tenant's device credentials."""
        return await self._off_loop(self._mgr.clear_auth, tenant_id, timeout)

    async def pair_code(self, tenant_id: str, phone: str, timeout: float | None = None) -> str:
        """:meth:`ConnectionManager.pair_code`: a code to type on the phone while pairing."""
        return await self._off_loop(self._mgr.pair_code, tenant_id, phone, timeout)

    async def send_text(
        self, tenant_id: str, to: str, text: str, timeout: float | None = None
    ) -> str:
        """:meth:`ConnectionManager.send_text`: send now; the message id. Cancelled once the
        send has begun, the message may still go out."""
        return await self._off_loop(self._mgr.send_text, tenant_id, to, text, timeout)

    async def send(
        self,
        tenant_id: str,
        to: str,
        text: str,
        *,
        idempotency_key: str | None = None,
        expires_in: float | None = None,
    ) -> OutboundMessage:
        """:meth:`ConnectionManager.send`: queue a text whatever the tenant's state."""
        return await self._off_loop(
            self._mgr.send,
            tenant_id,
            to,
            text,
            idempotency_key=idempotency_key,
            expires_in=expires_in,
        )

    async def send_message(
        self,
        tenant_id: str,
        message: Outgoing | MediaUrl,
        *,
        idempotency_key: str | None = None,
        expires_in: float | None = None,
    ) -> OutboundMessage:
        """:meth:`ConnectionManager.send_message`: queue any kind of message."""
        return await self._off_loop(
            self._mgr.send_message,
            tenant_id,
            message,
            idempotency_key=idempotency_key,
            expires_in=expires_in,
        )

    async def outbound(self, tenant_id: str, message_id: str) -> OutboundMessage:
        """:meth:`ConnectionManager.outbound`: a queued message and its state."""
        return await self._off_loop(self._mgr.outbound, tenant_id, message_id)

    async def outbound_messages(
        self, tenant_id: str, status: str | None = None, limit: int = 100
    ) -> list[OutboundMessage]:
        """:meth:`ConnectionManager.outbound_messages`: the tenant's messages, oldest first."""
        return await self._off_loop(self._mgr.outbound_messages, tenant_id, status, limit)

    async def cancel_outbound(self, tenant_id: str, message_id: str) -> OutboundMessage:
        """:meth:`ConnectionManager.cancel_outbound`: cancel a message while it is queued."""
        return await self._off_loop(self._mgr.cancel_outbound, tenant_id, message_id)

    async def resend(self, tenant_id: str, message_id: str) -> OutboundMessage:
        """:meth:`ConnectionManager.resend`: queue an unknown, failed, expired or cancelled
        message again."""
        return await self._off_loop(self._mgr.resend, tenant_id, message_id)

    async def configure(
        self,
        tenant_id: str,
        settings: TenantSettings | None = None,
        *,
        create: bool = False,
        **changes: Any,
    ) -> TenantSettings:
        """:meth:`ConnectionManager.configure`: set the tenant's own settings."""
        return await self._off_loop(
            self._mgr.configure, tenant_id, settings, create=create, **changes
        )

    async def settings(self, tenant_id: str) -> TenantSettings:
        """:meth:`ConnectionManager.settings`: the tenant's own settings."""
        return await self._off_loop(self._mgr.settings, tenant_id)

    async def seen(self, tenant_id: str, message_id: str) -> bool:
        """:meth:`ConnectionManager.seen`: True the first time ``message_id`` is recorded."""
        return await self._off_loop(self._mgr.seen, tenant_id, message_id)

    # --- queries --------------------------------------------------------------------------

    async def is_connection_active(self, tenant_id: str, timeout: float | None = None) -> bool:
        """Whether the tenant has a connected link in this process."""
        return await self._off_loop(self._mgr.is_connection_active, tenant_id, timeout)

    async def status(self, tenant_id: str, timeout: float | None = None) -> TenantStatus:
        """:meth:`ConnectionManager.status`: live here, else as stored; UnknownTenant."""
        return await self._off_loop(self._mgr.status, tenant_id, timeout)

    async def statuses(self, timeout: float | None = None) -> list[TenantStatus]:
        """Every known tenant's status, ordered by id."""
        return await self._off_loop(self._mgr.statuses, timeout)

    async def local_statuses(self, timeout: float | None = None) -> list[TenantStatus]:
        """The statuses of the tenants this process runs, ordered by id."""
        return await self._off_loop(self._mgr.local_statuses, timeout)

    async def qr(self, tenant_id: str, timeout: float | None = None) -> str | None:
        """The QR code the tenant shows while pairing, or None."""
        return await self._off_loop(self._mgr.qr, tenant_id, timeout)

    async def check_database(self) -> None:
        """Run one statement; DatabaseUnavailable (or ManagerStopped) if it fails."""
        await self._off_loop(self._mgr.check_database)

    async def leases_held(self) -> int:
        """How many unexpired leases this instance holds, as the database says."""
        return await self._off_loop(self._mgr.leases_held)

    async def wait_for(
        self,
        tenant_id: str,
        state: TenantState | Iterable[TenantState],
        timeout: float | None = None,
    ) -> TenantStatus:
        """Until the tenant is in ``state`` (or one of several) in this process: the status
        it had when it got there. OperationTimeout after ``timeout`` seconds (the configured
        call timeout if None). Waits on the loop, holding no thread."""
        tenant_id = validate_tenant_id(tenant_id)
        states = {TenantState(state)} if isinstance(state, str) else {TenantState(s) for s in state}
        limit = self.config.call_timeout_s if timeout is None else timeout
        what = f"wait_for({tenant_id!r}, {'|'.join(sorted(states))})"
        return await self._running()[1].wait_for(tenant_id, frozenset(states), limit, what)

    def subscribe(self, callback: AsyncSubscriber) -> Callable[[], None]:
        """Call ``callback`` (a function or a coroutine function) with every StatusEvent and
        InboundMessage, on this manager's loop; returns an unsubscriber.

        Each subscriber gets its events in order, one at a time; one that raises is logged
        and gets the next event. Call it from the loop's thread.
        """
        return self._running()[1].subscribe(callback)

    # --- internals ----------------------------------------------------------------------

    def _running(self) -> tuple[OffLoop, LoopEvents]:
        offload, events = self._offload, self._events
        if offload is None or events is None:
            raise ManagerStopped()
        return offload, events

    async def _off_loop(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` (a blocking call of the manager) on a pool thread."""
        return await self._running()[0].run(fn, *args, **kwargs)
