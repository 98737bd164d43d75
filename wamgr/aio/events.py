"""A manager's events brought onto one asyncio loop: states to wait for, and subscribers.

One callback on the manager's dispatcher thread hands every event to the loop (in
batches, :mod:`wamgr.aio.wakeups`); everything else here runs on the loop, so it needs no lock.
From the events the loop keeps the last status of every tenant this process runs, which is
what ``wait_for`` awaits: a waiting coroutine holds no thread and no waiter in the actors,
so cancelling it leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Collection, Iterable

from loguru import logger

from wamgr.aio.wakeups import Batcher
from wamgr.errors import ManagerStopped, OperationTimeout
from wamgr.events import ManagerEvent, StatusEvent
from wamgr.status import TenantState, TenantStatus

#: What ``AsyncConnectionManager.subscribe`` takes: a plain function or a coroutine function.
AsyncSubscriber = Callable[[ManagerEvent], Awaitable[None] | None]


class _Waiter:
    """One ``wait_for`` under way: the states it waits for and the future it resolves."""

    __slots__ = ("future", "states")

    def __init__(self, states: Collection[TenantState], future: asyncio.Future[TenantStatus]):
        self.states = states
        self.future = future


class Subscription:
    """One subscriber's events, delivered in order by one task; a failure is logged and the
    next event goes on."""

    def __init__(self, callback: AsyncSubscriber, loop: asyncio.AbstractEventLoop):
        self.callback = callback
        self._queue: asyncio.Queue[ManagerEvent | None] = asyncio.Queue()
        self._open = True
        self.task = loop.create_task(self._deliver(), name=f"wamgr-subscriber {callback!r}")

    def put(self, event: ManagerEvent) -> None:
        """Queue ``event`` for the callback (dropped once closed)."""
        if self._open:
            self._queue.put_nowait(event)

    def close(self, drain: bool) -> None:
        """Deliver nothing more (``drain``: except what is queued already)."""
        if not drain:
            self._open = False
        self._queue.put_nowait(None)

    async def _deliver(self) -> None:
        while (event := await self._queue.get()) is not None:
            if not self._open:
                return
            try:
                result = self.callback(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("subscriber {!r} failed on {!r}", self.callback, event)
        self._open = False


class LoopEvents:
    """The bridge from one manager's dispatcher thread to ``loop``."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self._statuses: dict[str, TenantStatus] = {}
        self._waiters: dict[str, list[_Waiter]] = {}
        self._subscriptions: list[Subscription] = []
        self._arrivals = Batcher(loop, self._arrived)

    # --- on the dispatcher thread ----------------------------------------------------

    def on_event(self, event: ManagerEvent) -> None:
        """The manager's subscriber: hand ``event`` to the loop (never blocks)."""
        self._arrivals.put(event)

    # --- on the loop -----------------------------------------------------------------

    @property
    def waiting(self) -> int:
        """How many ``wait_for`` calls are waiting now."""
        return sum(len(waiters) for waiters in self._waiters.values())

    def seed(self, statuses: Iterable[TenantStatus]) -> None:
        """Statuses read from the manager after subscribing; an event already arrived for a
        tenant is as new or newer, so it is kept."""
        for status in statuses:
            if status.tenant_id not in self._statuses:
                self._statuses[status.tenant_id] = status
                self._settle(status)

    async def wait_for(
        self, tenant_id: str, states: Collection[TenantState], timeout: float, what: str
    ) -> TenantStatus:
        """The tenant's status once it is in one of ``states`` in this process (as it was
        when it got there); OperationTimeout after ``timeout`` seconds."""
        status = self._statuses.get(tenant_id)
        if status is not None and status.state in states:
            return status
        waiter = _Waiter(states, self._loop.create_future())
        self._waiters.setdefault(tenant_id, []).append(waiter)
        try:
            async with asyncio.timeout(timeout):
                return await waiter.future
        except TimeoutError:
            raise OperationTimeout(what, timeout) from None
        finally:
            self._forget(tenant_id, waiter)

    def subscribe(self, callback: AsyncSubscriber) -> Callable[[], None]:
        """Deliver every later event to ``callback`` on this loop; returns the unsubscriber."""
        subscription = Subscription(callback, self._loop)
        self._subscriptions.append(subscription)

        def unsubscribe() -> None:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)
                subscription.close(drain=False)

        return unsubscribe

    def fail_waiters(self) -> None:
        """Every ``wait_for`` under way raises ManagerStopped."""
        for waiters in self._waiters.values():
            for waiter in waiters:
                if not waiter.future.done():
                    waiter.future.set_exception(ManagerStopped())

    async def close(self, timeout: float) -> None:
        """Deliver what is queued for the subscribers (at most ``timeout`` seconds), then
        end their tasks."""
        subscriptions, self._subscriptions = self._subscriptions, []
        for subscription in subscriptions:
            subscription.close(drain=True)
        tasks = [s.task for s in subscriptions]
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=timeout)
        for task in late:
            logger.warning("subscriber task {} still busy at stop; cancelled", task.get_name())
            task.cancel()
        if late:
            await asyncio.wait(late)

    def _arrived(self, event: ManagerEvent) -> None:
        if isinstance(event, StatusEvent):
            self._statuses[event.tenant_id] = event.status
            self._settle(event.status)
        for subscription in self._subscriptions:
            subscription.put(event)

    def _settle(self, status: TenantStatus) -> None:
        for waiter in self._waiters.get(status.tenant_id, ()):
            if status.state in waiter.states and not waiter.future.done():
                waiter.future.set_result(status)

    def _forget(self, tenant_id: str, waiter: _Waiter) -> None:
        waiters = self._waiters.get(tenant_id)
        if waiters is not None and waiter in waiters:
            waiters.remove(waiter)
            if not waiters:
                del self._waiters[tenant_id]
