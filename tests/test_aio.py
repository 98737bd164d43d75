"""AsyncConnectionManager: the manager's calls as coroutines that never block the loop, and
cancellation that leaves no waiter, thread or lease behind."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import psycopg
import pytest

from wamgr import AsyncConnectionManager, ConnectionManager, TenantState
from wamgr.aio.offload import OffLoop
from wamgr.errors import LockBusy, ManagerStopped, OperationTimeout
from wamgr.events import InboundMessage, ManagerEvent, StatusEvent
from wamgr.transport.outgoing import ReactionOut
from wamgr.transport.sim import SimWhatsApp
from wamgr.transport.sim_link import SimLink

CONNECTED = TenantState.CONNECTED
PEER = "15550001111"
#: Seconds any single wait in these tests may take before it fails.
WAIT_S = 10.0
#: The loop-lag budget: no tick may come later than this.
MAX_TICK_LATENESS_S = 0.05
#: How often the ticker measures the loop.
TICK_S = 0.005
#: A witness thread waking later than this saw the whole process stand still.
WITNESS_SLACK_S = 0.001

T = TypeVar("T")


def run(make: Callable[[], Awaitable[T]]) -> T:
    """Run one coroutine on a fresh event loop (a test's whole async part)."""

    async def main() -> T:
        return await make()

    return asyncio.run(main())


async def until(predicate: Callable[[], object], what: str) -> None:
    """Poll ``predicate`` on the loop (it watches a thread the test does not own)."""
    end = time.monotonic() + WAIT_S
    while not predicate():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def registry_waiters(mgr: ConnectionManager) -> int:
    """Waiters the registry actor holds (wait_for calls of the blocking manager)."""
    registry = mgr.runtime.registry._actor_weakref()  # type: ignore[attr-defined]
    waiters = registry._waiters if registry is not None else {}
    return sum(len(w) for w in waiters.values())


def offload_of(amgr: AsyncConnectionManager) -> OffLoop:
    return amgr._running()[0]


@pytest.mark.slow
def test_calls_run_as_coroutines_and_wait_for_waits_on_the_loop(mgr, sim: SimWhatsApp) -> None:
    async def scenario() -> None:
        async with AsyncConnectionManager(mgr, max_threads=2) as amgr:
            await amgr.connect("t1")
            status = await amgr.wait_for("t1", CONNECTED, timeout=WAIT_S)
            assert status.state is CONNECTED and status.jid
            assert await amgr.is_connection_active("t1")
            message_id = await amgr.send_text("t1", PEER, "hi")
            assert sim.sent_messages(status.jid) == [(PEER, "hi", message_id)]
            queued = await amgr.send("t1", PEER, "queued", idempotency_key="k1")
            again = await amgr.send("t1", PEER, "queued", idempotency_key="k1")
            assert again.message_id == queued.message_id  # the first one, not a second
            assert [m.message_id for m in await amgr.outbound_messages("t1")] == [queued.message_id]
            assert (await amgr.outbound("t1", queued.message_id)).tenant_id == "t1"
            reaction = await amgr.send_message("t1", ReactionOut(PEER, message_id, "👍"))
            assert reaction.kind == "reaction"
            assert (await amgr.configure("t1", metadata={"crm": 7})).metadata == {"crm": 7}
            assert (await amgr.settings("t1")).metadata == {"crm": 7}
            assert [s.tenant_id for s in await amgr.statuses()] == ["t1"]
            assert (await amgr.status("t1")).state is CONNECTED
            with pytest.raises(OperationTimeout, match=r"wait_for\('t1', logged_out\)"):
                await amgr.wait_for("t1", TenantState.LOGGED_OUT, timeout=0.05)
            removed = await amgr.remove("t1")
            assert removed is not None and removed.state is TenantState.STOPPED
        with pytest.raises(ManagerStopped):
            await amgr.connect("t1")

    run(scenario)
    assert sim.open_sockets() == 0


@pytest.mark.slow
def test_subscribers_run_on_the_loop_in_order_and_a_failure_is_contained(
    mgr, sim: SimWhatsApp, logs: list[str]
) -> None:
    got: list[ManagerEvent] = []

    async def scenario() -> None:
        loop_thread = threading.get_ident()
        inbound = asyncio.Event()

        async def failing(event: ManagerEvent) -> None:
            raise RuntimeError("subscriber bug")

        async def collect(event: ManagerEvent) -> None:
            assert threading.get_ident() == loop_thread
            got.append(event)
            if isinstance(event, InboundMessage):
                inbound.set()

        async with AsyncConnectionManager(mgr) as amgr:
            amgr.subscribe(failing)
            amgr.subscribe(collect)
            await amgr.connect("t1")
            jid = (await amgr.wait_for("t1", CONNECTED, timeout=WAIT_S)).jid
            assert jid is not None
            sim.inbound(jid, PEER, "hello", message_id="M1")
            await asyncio.wait_for(inbound.wait(), WAIT_S)

    run(scenario)
    states = [e.status.state for e in got if isinstance(e, StatusEvent)]
    assert states[-1] is TenantState.STOPPED and CONNECTED in states
    assert [(e.message_id, e.text) for e in got if isinstance(e, InboundMessage)] == [
        ("M1", "hello")
    ]
    assert any("subscriber" in line and "subscriber bug" in line for line in logs)


def live_leases(database_url: str) -> int:
    """Unexpired leases in the test's database, whoever holds them."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM wamgr_leases WHERE expires_at > now()")
        return int(row.fetchone()[0])  # type: ignore[index]


def test_cancelling_wait_for_leaves_no_waiter_thread_or_lease(
    mgr, database_url: str, thread_baseline: Callable[[], set[str]]
) -> None:
    async def scenario() -> None:
        async with AsyncConnectionManager(mgr) as amgr:
            await amgr.connect("t1")
            waiting = asyncio.create_task(amgr.wait_for("t1", TenantState.LOGGED_OUT, WAIT_S))
            await until(lambda: amgr._running()[1].waiting == 1, "the wait to begin")
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            assert amgr._running()[1].waiting == 0
            assert registry_waiters(mgr) == 0
            assert offload_of(amgr).running == 0
            assert await amgr.leases_held() == 1  # t1's own: it is still connected

    run(scenario)
    assert live_leases(database_url) == 0
    assert not {name for name in thread_baseline() if name.startswith("wamgr")}


@pytest.fixture
def gated_sends(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """(entered, release): every simulated send sets ``entered`` and then waits for
    ``release`` (at most WAIT_S) before it goes out."""
    entered, release = threading.Event(), threading.Event()
    send = SimLink.send_text

    def gated(link: SimLink, to: str, text: str) -> str:
        entered.set()
        release.wait(WAIT_S)
        return send(link, to, text)

    monkeypatch.setattr(SimLink, "send_text", gated)
    return entered, release


@pytest.mark.slow
def test_cancelling_send_text_leaves_no_thread_or_lease_and_a_queued_one_never_runs(
    mgr,
    sim: SimWhatsApp,
    database_url: str,
    gated_sends: tuple[threading.Event, threading.Event],
    thread_baseline: Callable[[], set[str]],
) -> None:
    entered, release = gated_sends

    async def scenario() -> str:
        async with AsyncConnectionManager(mgr, max_threads=1) as amgr:
            await amgr.connect("t1")
            jid = (await amgr.wait_for("t1", CONNECTED, timeout=WAIT_S)).jid
            assert jid is not None
            sending = asyncio.create_task(amgr.send_text("t1", PEER, "first"))
            await until(entered.is_set, "the first send to reach the link")
            queued = asyncio.create_task(amgr.send_text("t1", PEER, "queued"))
            await asyncio.sleep(0)  # both are submitted; the pool's one thread is busy
            sending.cancel()
            queued.cancel()
            for task in (sending, queued):
                with pytest.raises(asyncio.CancelledError):
                    await task
            release.set()
            await until(lambda: offload_of(amgr).running == 0, "the running send to end")
            assert await amgr.leases_held() == 1
            return jid

    jid = run(scenario)
    # the send that had begun went out; the one still queued never ran
    assert [m[1] for m in sim.sent_messages(jid)] == ["first"]
    assert live_leases(database_url) == 0
    assert not {name for name in thread_baseline() if name.startswith("wamgr")}


class ProcessStalls:
    """Times the whole process stood still (monotonic start, end), while installed: garbage
    collections (they hold every thread) and the late wake-ups of a witness thread that
    only sleeps (the machine's other load, threads holding the GIL).

    A blocking call on the loop leaves the witness on time (a blocked thread lets the GIL
    go), so tick lateness net of these stalls is what the loop itself was held up.
    """

    def __init__(self) -> None:
        self.stalls: list[tuple[float, float]] = []
        self._gc_started = 0.0
        self._done = threading.Event()
        self._witness = threading.Thread(target=self._watch, name="test-witness", daemon=True)

    def __enter__(self) -> ProcessStalls:
        gc.callbacks.append(self._on_gc)
        self._witness.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._witness.join(WAIT_S)
        gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.monotonic()
        else:
            self.stalls.append((self._gc_started, time.monotonic()))

    def _watch(self) -> None:
        while not self._done.is_set():
            due = time.monotonic() + TICK_S
            time.sleep(TICK_S)
            now = time.monotonic()
            if now - due > WITNESS_SLACK_S:
                self.stalls.append((due, now))

    def within(self, start: float, end: float) -> float:
        """Seconds between ``start`` and ``end`` during which the process stood still."""
        covered, reached = 0.0, start
        for a, b in sorted(self.stalls):
            a, b = max(a, reached), min(b, end)
            if b > a:
                covered += b - a
                reached = b
        return covered


@pytest.mark.slow
def test_500_concurrent_connects_never_hold_the_loop_up(make_manager, sim: SimWhatsApp) -> None:
    tenants = [f"t{i:03d}" for i in range(500)]
    lateness: list[float] = []

    async def ticker(done: asyncio.Event, stalls: ProcessStalls) -> None:
        loop = asyncio.get_running_loop()  # loop.time() is time.monotonic()
        while not done.is_set():
            due = loop.time() + TICK_S
            await asyncio.sleep(TICK_S)
            now = loop.time()
            lateness.append(now - due - stalls.within(due, now))

    async def scenario() -> None:
        mgr = make_manager(db_pool_size=20, call_timeout_s=60.0)
        async with AsyncConnectionManager(mgr, max_threads=8) as amgr:
            done = asyncio.Event()
            with ProcessStalls() as stalls:
                ticking = asyncio.create_task(ticker(done, stalls))
                await asyncio.gather(*(amgr.connect(t) for t in tenants))
                statuses = await asyncio.gather(
                    *(amgr.wait_for(t, CONNECTED, timeout=60.0) for t in tenants)
                )
                done.set()
                await ticking
        assert {s.state for s in statuses} == {CONNECTED}

    # What earlier tests left behind is not this loop's to collect: a full collection of a
    # long run's garbage in the middle would stall every thread, the loop's too.
    gc.collect()
    gc.freeze()
    try:
        run(scenario)
    finally:
        gc.unfreeze()
    assert len(lateness) > 10
    worst = max(lateness)
    assert worst < MAX_TICK_LATENESS_S, f"a tick came {worst * 1000:.0f} ms late"
    assert sim.open_sockets() == 0


def test_processing_locks_as_coroutines(mgr) -> None:
    async def scenario() -> None:
        async with AsyncConnectionManager(mgr) as amgr:
            async with amgr.locks.hold("shop-1:peer", ttl=30, wait=0) as claim:
                assert claim.key == "shop-1:peer" and claim.token > 0
                with pytest.raises(LockBusy):
                    async with amgr.locks.hold("shop-1:peer", wait=0.05):
                        pass
                assert await amgr.locks.claim("shop-1:peer") is None
                assert await claim.extend(60)
            assert await amgr.locks.holder("shop-1:peer") is None
            again = await amgr.locks.claim("shop-1:peer", ttl=30)
            assert again is not None and again.token > claim.token
            assert await again.release()

    run(scenario)


def test_cancelling_a_start_stops_what_it_started(make_manager, database_url, sim) -> None:
    from wamgr import Config

    async def scenario() -> None:
        amgr = AsyncConnectionManager(
            Config(database_url=database_url, transport=sim, instance_id="cancelled")
        )
        starting = asyncio.create_task(amgr.start())
        await asyncio.sleep(0)
        starting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await starting
        with pytest.raises(ManagerStopped):
            await amgr.connect("t1")
        with pytest.raises(ManagerStopped):
            amgr.manager.runtime  # noqa: B018

    run(scenario)
