"""ConnectionManager's own promises, whatever the tenants do: every call checks what it is
given before any I/O, raises ManagerStopped unless the manager runs, and returns within its
timeout, raising OperationTimeout that names the call; the status reads wait for no thread.
(What the calls do to tenants is in tests/actors/test_tenant_scenarios.py.)"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from wamgr import (
    Config,
    ConnectionManager,
    DatabaseUnavailable,
    InvalidPhone,
    InvalidTenantId,
    ManagerStopped,
    OperationTimeout,
    TenantState,
)
from wamgr.actors import messages as m
from wamgr.actors.registry import RegistryActor
from wamgr.actors.tenant import TenantActor
from wamgr.errors import InvalidRecipient
from wamgr.status import Desired

#: A database no call may reach: a test that touches it fails slowly, not by luck.
UNREACHABLE = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1"
CONNECTED = TenantState.CONNECTED

Call = Callable[[ConnectionManager], object]

#: Every call of the facade, with arguments it accepts.
CALLS: dict[str, Call] = {
    "connect": lambda mgr: mgr.connect("t1"),
    "reconnect": lambda mgr: mgr.reconnect("t1"),
    "remove": lambda mgr: mgr.remove("t1"),
    "clear_auth": lambda mgr: mgr.clear_auth("t1"),
    "pair_code": lambda mgr: mgr.pair_code("t1", "15551234567"),
    "send_text": lambda mgr: mgr.send_text("t1", "15551234567", "hi"),
    "is_connection_active": lambda mgr: mgr.is_connection_active("t1"),
    "status": lambda mgr: mgr.status("t1"),
    "statuses": lambda mgr: mgr.statuses(),
    "local_statuses": lambda mgr: mgr.local_statuses(),
    "qr": lambda mgr: mgr.qr("t1"),
    "wait_for": lambda mgr: mgr.wait_for("t1", CONNECTED),
    "subscribe": lambda mgr: mgr.subscribe(lambda event: None),
    "locks": lambda mgr: mgr.locks.claim("k", 30),
    "seen": lambda mgr: mgr.seen("t1", "m1"),
    "check_database": lambda mgr: mgr.check_database(),
    "leases_held": lambda mgr: mgr.leases_held(),
    "runtime": lambda mgr: mgr.runtime,
    "tenants_store": lambda mgr: mgr.tenants_store,
    "leases_store": lambda mgr: mgr.leases_store,
}

#: The calls that take a timeout, with the name each gives itself in OperationTimeout.
TIMED: dict[str, tuple[Callable[[ConnectionManager, float | None], object], str]] = {
    "connect": (lambda mgr, t: mgr.connect("t1", timeout=t), "connect('t1')"),
    "reconnect": (lambda mgr, t: mgr.reconnect("t1", timeout=t), "reconnect('t1')"),
    "remove": (lambda mgr, t: mgr.remove("t1", timeout=t), "remove('t1')"),
    "clear_auth": (lambda mgr, t: mgr.clear_auth("t1", timeout=t), "clear_auth('t1')"),
    "pair_code": (
        lambda mgr, t: mgr.pair_code("t1", "15551234567", timeout=t),
        "pair_code('t1')",
    ),
    "send_text": (
        lambda mgr, t: mgr.send_text("t1", "15551234567", "hi", timeout=t),
        "send_text('t1')",
    ),
    "qr": (lambda mgr, t: mgr.qr("t1", timeout=t), "qr('t1')"),
    "wait_for": (
        lambda mgr, t: mgr.wait_for("t1", [CONNECTED, TenantState.FAILED], timeout=t),
        "wait_for('t1', connected|failed)",
    ),
}

#: The reads answered from the registry's table: they wait for no actor, however busy.
READS: dict[str, Callable[[ConnectionManager, float | None], object]] = {
    "is_connection_active": lambda mgr, t: mgr.is_connection_active("t1", timeout=t),
    "status": lambda mgr, t: mgr.status("t1", timeout=t).state,
    "statuses": lambda mgr, t: [s.state for s in mgr.statuses(timeout=t)],
    "local_statuses": lambda mgr, t: [s.state for s in mgr.local_statuses(timeout=t)],
}

TIMEOUT_S = 0.1
#: Room past a call's timeout for a loaded host to return from it.
LATE_S = 2.0


@pytest.fixture
def unstarted(tmp_path: Path) -> ConnectionManager:
    """A manager that was never started, on a database nothing can reach."""
    return ConnectionManager(
        Config(database_url=UNREACHABLE, home=tmp_path, transport="sim", call_timeout_s=0.5)
    )


# --- stopped -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CALLS))
def test_every_call_before_start_is_manager_stopped(unstarted, name):
    with pytest.raises(ManagerStopped, match="start a new one"):
        CALLS[name](unstarted)


def test_every_call_after_stop_is_manager_stopped(mgr, sim):
    mgr.connect("t1")
    mgr.wait_for("t1", CONNECTED, timeout=5)
    mgr.stop()
    for name, call in CALLS.items():
        with pytest.raises(ManagerStopped):
            call(mgr)
        assert sim.open_sockets() == 0, f"{name} opened a socket"


def test_start_and_stop_are_idempotent(make_manager):
    mgr = make_manager()
    assert mgr.start() is mgr
    mgr.stop()
    mgr.stop()
    with pytest.raises(ManagerStopped):
        mgr.status("t1")


def test_a_manager_is_a_context_manager_that_stops_on_exit(database_url, sim, clock, tmp_path):
    config = Config(
        database_url=database_url, home=tmp_path, transport=sim, clock=clock, instance_id="ctx"
    )
    with ConnectionManager(config) as mgr:
        mgr.connect("t1")
        mgr.wait_for("t1", CONNECTED, timeout=5)
    assert sim.open_sockets() == 0
    with pytest.raises(ManagerStopped):
        mgr.statuses()


@pytest.mark.slow
def test_a_start_without_its_database_fails_within_the_call_timeout(tmp_path):
    config = Config(database_url=UNREACHABLE, home=tmp_path, transport="sim", call_timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable, match="WAMGR_DATABASE_URL"):
        ConnectionManager(config).start()
    assert time.monotonic() - started < 0.5 + LATE_S


# --- validation before any I/O --------------------------------------------------------------

#: Calls given something wamgr refuses, with the error they must raise.
INVALID: dict[str, tuple[Call, type[Exception]]] = {
    "connect": (lambda mgr: mgr.connect("no spaces"), InvalidTenantId),
    "reconnect": (lambda mgr: mgr.reconnect(""), InvalidTenantId),
    "remove": (lambda mgr: mgr.remove("../etc"), InvalidTenantId),
    "clear_auth": (lambda mgr: mgr.clear_auth("-rf"), InvalidTenantId),
    "pair_code (id)": (lambda mgr: mgr.pair_code("x" * 65, "15551234567"), InvalidTenantId),
    "pair_code (phone)": (lambda mgr: mgr.pair_code("t1", "call me"), InvalidPhone),
    "send_text (id)": (lambda mgr: mgr.send_text(".", "15551234567", "hi"), InvalidTenantId),
    "send_text (to)": (lambda mgr: mgr.send_text("t1", "nobody", "hi"), InvalidRecipient),
    "is_connection_active": (lambda mgr: mgr.is_connection_active(None), InvalidTenantId),
    "status": (lambda mgr: mgr.status("ümlaut"), InvalidTenantId),
    "qr": (lambda mgr: mgr.qr("a/b"), InvalidTenantId),
    "wait_for (id)": (lambda mgr: mgr.wait_for("a b", CONNECTED), InvalidTenantId),
    "wait_for (state)": (lambda mgr: mgr.wait_for("t1", "online"), ValueError),
    "seen": (lambda mgr: mgr.seen("a\nb", "m1"), InvalidTenantId),
}


@pytest.mark.parametrize("name", list(INVALID))
def test_a_bad_argument_is_refused_before_any_io(unstarted, name):
    """The manager was never started and its database is unreachable: the argument is
    refused first, not ManagerStopped, not a database error."""
    call, error = INVALID[name]
    with pytest.raises(error):
        call(unstarted)


def test_a_bad_argument_to_a_running_manager_changes_nothing(mgr, sim):
    for name, (call, error) in INVALID.items():
        with pytest.raises(error):
            call(mgr)
        assert mgr.statuses() == [], name
    assert sim.open_sockets() == 0


# --- timeouts ----------------------------------------------------------------------------------


@pytest.fixture
def stalled(mgr, sim, monkeypatch) -> Iterator[ConnectionManager]:
    """``mgr`` with t1 connected, then its registry and t1's actor busy (one handler of each
    blocked) until the end of the test: every call that needs an answer from one waits."""
    mgr.connect("t1")
    mgr.wait_for("t1", CONNECTED, timeout=5)
    release = threading.Event()
    entered = threading.Semaphore(0)

    def blocked(self, message):
        entered.release()
        release.wait(60)
        return {}

    monkeypatch.setattr(RegistryActor, "_on_all_tenants", blocked)
    monkeypatch.setattr(TenantActor, "_on_get_qr", blocked)
    mgr.runtime.registry.tell(m.AllTenants())
    mgr.runtime.local.table.ref("t1").tell(m.GetQr())
    assert entered.acquire(timeout=5) and entered.acquire(timeout=5)
    yield mgr
    release.set()


@pytest.mark.slow
def test_every_call_returns_within_its_timeout_naming_itself(stalled):
    wrong: list[str] = []
    for name, (call, what) in TIMED.items():
        started = time.monotonic()
        try:
            call(stalled, TIMEOUT_S)
        except OperationTimeout as exc:
            took = time.monotonic() - started
            if exc.what != what or not TIMEOUT_S * 0.9 <= took < TIMEOUT_S + LATE_S:
                wrong.append(f"{name}: {exc.what!r} after {took:.2f} s")
            assert exc.format_message().startswith(f"{what} did not complete within 0.1 s")
        else:
            wrong.append(f"{name}: returned")
    assert wrong == []


@pytest.mark.slow
def test_status_reads_answer_while_the_registry_and_the_tenant_are_busy(stalled):
    answers = {name: read(stalled, TIMEOUT_S) for name, read in READS.items()}
    assert answers == {
        "is_connection_active": True,
        "status": CONNECTED,
        "statuses": [CONNECTED],
        "local_statuses": [CONNECTED],
    }


def test_without_a_timeout_a_call_is_bounded_by_call_timeout(make_manager, monkeypatch):
    mgr = make_manager(call_timeout_s=TIMEOUT_S)
    release = threading.Event()
    monkeypatch.setattr(RegistryActor, "_on_get_or_create", lambda self, message: release.wait(60))
    try:
        started = time.monotonic()
        with pytest.raises(OperationTimeout, match=r"connect\('t1'\) did not complete within 0\.1"):
            mgr.connect("t1")
        assert time.monotonic() - started < TIMEOUT_S + LATE_S
    finally:
        release.set()


def test_a_connect_that_cannot_reach_the_tenant_gives_its_lease_back(make_manager, monkeypatch):
    mgr = make_manager(call_timeout_s=TIMEOUT_S)
    release = threading.Event()
    monkeypatch.setattr(RegistryActor, "_on_get_or_create", lambda self, message: release.wait(60))
    try:
        with pytest.raises(OperationTimeout):
            mgr.connect("t1")
        assert mgr.leases_store.holder("t1") is None  # no other instance waits for it
        assert mgr.tenants_store.get("t1").desired is Desired.CONNECTED  # the wish stays
    finally:
        release.set()


# --- unknown tenants ------------------------------------------------------------------------


def test_remove_of_an_unknown_tenant_is_a_no_op(mgr):
    assert mgr.remove("nobody") is None


@pytest.mark.slow
def test_a_status_read_right_after_a_connect_shows_what_the_connect_did(make_manager) -> None:
    mgr = make_manager()
    for n in range(30):
        tenant = f"t{n}"
        connected = mgr.connect(tenant)
        seen = mgr.status(tenant)  # from the table, not the registry's thread
        assert connected.state is not TenantState.STOPPED
        assert seen.state is not TenantState.STOPPED, (n, connected, seen)
