"""RegistryActor on its own: one actor per tenant, the status table, waiters, and shutdown.

The tenant actors it makes are idle stand-ins; statuses are told to it as tenants tell them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pykka
import pytest

from wamgr import ManagerStopped
from wamgr.actors import messages as m
from wamgr.actors.registry import RegistryActor, TenantTable
from wamgr.status import TenantState, TenantStatus

WAIT_S = 5.0
CONNECTED = TenantState.CONNECTED


class _Idle(pykka.ThreadingActor):
    pass


@dataclass
class Made:
    """Every tenant actor the registry's factory started, and every status change it saw."""

    actors: list[tuple[str, pykka.ActorRef]] = field(default_factory=list)
    changes: list[tuple[TenantStatus, TenantStatus | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def make_tenant(self, tenant_id: str, registry: pykka.ActorRef) -> pykka.ActorRef:
        ref = _Idle.start()
        with self.lock:
            self.actors.append((tenant_id, ref))
        return ref

    def on_status(self, new: TenantStatus, old: TenantStatus | None) -> None:
        self.changes.append((new, old))


@pytest.fixture
def made() -> Made:
    return Made()


@pytest.fixture
def registry(made: Made) -> Iterator[pykka.ActorRef]:
    ref = RegistryActor.start(made.make_tenant, made.on_status)
    yield ref
    ref.stop()
    for _, tenant in made.actors:
        tenant.stop()


def ask(registry: pykka.ActorRef, message: object) -> object:
    return registry.ask(message, timeout=WAIT_S)


def tell_status(
    registry: pykka.ActorRef, tenant_id: str, state: TenantState, active: bool = False, **kw
) -> TenantStatus:
    status = TenantStatus(tenant_id, state, **kw)
    registry.tell(m.StatusChanged(status, active))
    return status


# --- one actor per tenant ------------------------------------------------------------------


def test_get_or_create_makes_one_actor_per_tenant(registry, made):
    first = ask(registry, m.GetOrCreate("t1"))
    assert ask(registry, m.GetOrCreate("t1")) is first
    assert ask(registry, m.Lookup("t1")) is first
    assert ask(registry, m.Lookup("t2")) is None
    assert ask(registry, m.AllTenants()) == {"t1": first}
    assert [tenant for tenant, _ in made.actors] == ["t1"]


def test_concurrent_get_or_create_makes_one_actor_per_tenant(registry, made):
    threads = 16
    start = threading.Barrier(threads)
    got: list[tuple[str, pykka.ActorRef]] = []
    lock = threading.Lock()

    def caller(index: int) -> None:
        start.wait(WAIT_S)
        for tenant in ("a", "b", "c", "d") if index % 2 else ("d", "c", "b", "a"):
            ref = ask(registry, m.GetOrCreate(tenant))
            with lock:
                got.append((tenant, ref))

    workers = [threading.Thread(target=caller, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(WAIT_S)
    assert len(got) == threads * 4
    assert sorted(tenant for tenant, _ in made.actors) == ["a", "b", "c", "d"]
    one_each = dict(made.actors)
    assert all(ref is one_each[tenant] for tenant, ref in got)


# --- the status table ------------------------------------------------------------------------


def test_statuses_and_activity_come_from_what_tenants_told(registry):
    assert ask(registry, m.StatusOf("t1")) is None
    assert ask(registry, m.IsActive("t1")) is False
    tell_status(registry, "t2", TenantState.BACKOFF, attempt=1)
    connecting = tell_status(registry, "t1", TenantState.CONNECTING)
    assert ask(registry, m.StatusOf("t1")) == connecting
    assert ask(registry, m.IsActive("t1")) is False
    connected = tell_status(registry, "t1", CONNECTED, active=True, jid="1@s.whatsapp.net")
    assert ask(registry, m.StatusOf("t1")) == connected
    assert ask(registry, m.IsActive("t1")) is True
    assert [s.tenant_id for s in ask(registry, m.AllStatuses())] == ["t1", "t2"]
    tell_status(registry, "t1", TenantState.BACKOFF, attempt=1)
    assert ask(registry, m.IsActive("t1")) is False
    assert ask(registry, m.IsActive("t2")) is False


def test_the_table_is_read_from_any_thread_and_is_current_when_a_waiter_wakes(made):
    table = TenantTable()
    registry = RegistryActor.start(made.make_tenant, made.on_status, table)
    try:
        tenant = ask(registry, m.GetOrCreate("t1"))
        assert table.ref("t1") is tenant and table.refs() == {"t1": tenant}
        seen: list[tuple[bool, TenantState | None]] = []
        stop = threading.Event()

        def reader() -> None:  # reads while the registry writes, never asking it
            while not stop.is_set():
                active = table.is_active("t1")  # first: a status is recorded before activity
                status = table.status("t1")
                seen.append((active, status.state if status else None))
                table.statuses()

        thread = threading.Thread(target=reader)
        thread.start()
        for i in range(200):
            tell_status(registry, f"x{i}", TenantState.CONNECTING)
        waiter = m.WaitFor("t1", (CONNECTED,))
        registry.tell(waiter)
        tell_status(registry, "t1", CONNECTED, active=True)
        assert waiter.event.wait(WAIT_S)
        assert table.is_active("t1") and table.status("t1") == waiter.result[0]
        stop.set()
        thread.join(WAIT_S)
        # never half a change: active only once its status is there
        assert set(seen) <= {(False, None), (False, CONNECTED), (True, CONNECTED)}, set(seen)
        assert [s.tenant_id for s in table.statuses()][:2] == ["t1", "x0"]
    finally:
        registry.stop()
        for _, ref in made.actors:
            ref.stop()


def test_the_listener_hears_state_changes_only(registry, made):
    first = tell_status(registry, "t1", TenantState.CONNECTING)
    tell_status(registry, "t1", TenantState.CONNECTING, owner="me")  # same state
    connected = tell_status(registry, "t1", CONNECTED, active=True)
    ask(registry, m.AllStatuses())  # every status told before is handled
    assert made.changes == [
        (first, None),
        (connected, TenantStatus("t1", TenantState.CONNECTING, owner="me")),
    ]


def test_a_failing_listener_does_not_stop_the_table(made):
    def broken(new: TenantStatus, old: TenantStatus | None) -> None:
        raise RuntimeError("a bug in a listener")

    registry = RegistryActor.start(made.make_tenant, broken)
    try:
        tell_status(registry, "t1", CONNECTED, active=True)
        tell_status(registry, "t2", TenantState.CONNECTING)
        assert ask(registry, m.IsActive("t1")) is True
        assert ask(registry, m.StatusOf("t2")).state is TenantState.CONNECTING
    finally:
        registry.stop()


# --- waiting for a state -------------------------------------------------------------------


def test_a_wait_for_a_state_already_reached_is_answered_at_once(registry):
    connected = tell_status(registry, "t1", CONNECTED, active=True)
    waiter = m.WaitFor("t1", frozenset({CONNECTED, TenantState.PAIRING}))
    registry.tell(waiter)
    assert waiter.event.wait(WAIT_S)
    assert waiter.result == [connected]


def test_a_wait_is_answered_by_the_first_status_in_one_of_its_states(registry):
    waiter = m.WaitFor("t1", frozenset({CONNECTED, TenantState.FAILED}))
    other = m.WaitFor("t2", frozenset({CONNECTED}))
    registry.tell(waiter)
    registry.tell(other)
    tell_status(registry, "t1", TenantState.CONNECTING)
    tell_status(registry, "t2", TenantState.CONNECTING)
    ask(registry, m.AllStatuses())
    assert not waiter.event.is_set() and not other.event.is_set()
    failed = tell_status(registry, "t1", TenantState.FAILED, last_error="no")
    tell_status(registry, "t1", CONNECTED, active=True)
    assert waiter.event.wait(WAIT_S)
    assert waiter.result == [failed]  # answered once, with the status that matched
    assert not other.event.is_set()


def test_a_cancelled_wait_is_never_answered(registry):
    kept = m.WaitFor("t1", frozenset({CONNECTED}))
    cancelled = m.WaitFor("t1", frozenset({CONNECTED}))
    registry.tell(kept)
    registry.tell(cancelled)
    registry.tell(m.CancelWait(cancelled))
    registry.tell(m.CancelWait(m.WaitFor("nobody", frozenset({CONNECTED}))))  # unknown: no-op
    tell_status(registry, "t1", CONNECTED, active=True)
    assert kept.event.wait(WAIT_S)
    ask(registry, m.AllStatuses())
    assert not cancelled.event.is_set() and cancelled.result == []


# --- shutdown --------------------------------------------------------------------------------


def test_no_tenant_actor_is_created_once_shutdown_began(registry):
    first = ask(registry, m.GetOrCreate("t1"))
    assert ask(registry, m.BeginShutdown()) == {"t1": first}
    with pytest.raises(ManagerStopped):
        ask(registry, m.GetOrCreate("t2"))
    assert ask(registry, m.GetOrCreate("t1")) is first  # it exists: it is told to stop
    assert ask(registry, m.AllTenants()) == {"t1": first}


def test_every_actor_handed_out_while_shutdown_begins_is_in_the_set_to_stop(registry, made):
    """Creators race BeginShutdown: whatever a creator got, the stopping manager knows of."""
    creators = 8
    start = threading.Barrier(creators + 1)
    handed_out: list[pykka.ActorRef] = []
    refused: list[str] = []
    lock = threading.Lock()

    def creator(index: int) -> None:
        start.wait(WAIT_S)
        for n in range(25):
            tenant = f"t{index}-{n}"
            try:
                ref = ask(registry, m.GetOrCreate(tenant))
            except ManagerStopped:
                with lock:
                    refused.append(tenant)
                continue
            with lock:
                handed_out.append(ref)

    workers = [threading.Thread(target=creator, args=(i,)) for i in range(creators)]
    for worker in workers:
        worker.start()
    start.wait(WAIT_S)
    to_stop = ask(registry, m.BeginShutdown())
    for worker in workers:
        worker.join(WAIT_S)
    assert len(handed_out) + len(refused) == creators * 25
    assert {id(ref) for ref in handed_out} <= {id(ref) for ref in to_stop.values()}
    assert ask(registry, m.AllTenants()) == to_stop
    assert len(made.actors) == len(to_stop)


def test_active_tenants_are_those_whose_link_is_connected_shown_or_recorded():
    table = TenantTable()
    table.record(TenantStatus("recorded-up", CONNECTED), active=True)
    table.record(TenantStatus("recorded-down", TenantState.BACKOFF), active=False)
    table.record(TenantStatus("shown-later", CONNECTED), active=True)  # then shown going down
    table.show(TenantStatus("shown-later", TenantState.CONNECTING), active=False)
    table.show(TenantStatus("shown-up", CONNECTED), active=True)  # not recorded yet
    active = table.active()
    assert active == {"recorded-up", "shown-up"}
    active.add("not-in-the-table")  # a copy: the table is unchanged
    assert table.active() == {"recorded-up", "shown-up"}
    assert all(table.is_active(t) for t in table.active())
