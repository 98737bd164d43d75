"""The runtime: components stop in the reverse of their start order, within one budget, a
failed or cancelled start leaves nothing running, and a database that is gone does not hold
the stop up."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest

from wamgr import Config, ConnectionManager, ManagerStopped, StartCancelled, TenantState
from wamgr.status import Desired
from wamgr.stop_steps import StopSteps
from wamgr.workers.sweeper import Sweeper


def make_config(database_url: str, home: Path, sim, instance_id: str) -> Config:
    """A manager's settings on the simulator (real clock)."""
    return Config(database_url=database_url, home=home, transport=sim, instance_id=instance_id)


def test_stop_steps_run_newest_first():
    ran: list[str] = []
    steps = StopSteps()
    for name in ("database", "actors", "claim loop"):
        steps.push(name, lambda _left, name=name: ran.append(name))
    steps.run(5.0)
    assert ran == ["claim loop", "actors", "database"]
    steps.run(5.0)
    assert ran == ["claim loop", "actors", "database"]  # each step runs once


def test_a_failing_step_does_not_skip_the_rest():
    ran: list[str] = []
    steps = StopSteps()
    steps.push("database", lambda _left: ran.append("database"))
    steps.push("broken", lambda _left: 1 / 0)
    steps.run(5.0)
    assert ran == ["database"]


def test_every_step_gets_what_is_left_of_one_budget():
    budgets: list[float] = []
    steps = StopSteps()
    steps.push("second", budgets.append)
    steps.push("first", lambda left: (budgets.append(left), threading.Event().wait(0.2)))
    steps.run(1.0)
    assert 0.9 <= budgets[0] <= 1.0
    assert budgets[1] <= budgets[0] - 0.2 + 0.01


@pytest.mark.slow
def test_a_start_that_fails_half_way_stops_what_it_started(make_manager, sim, monkeypatch):
    """The command listener starts last but one: by then the actors, the claim loop and the
    first links are running, and all of them must be gone after the failure."""
    first = make_manager(instance_id="first")
    first.connect("t1")
    first.wait_for("t1", TenantState.CONNECTED, timeout=5)
    first.stop()
    before = {t.ident for t in threading.enumerate()}

    def broken(self) -> None:
        raise RuntimeError("the listener could not start")

    monkeypatch.setattr("wamgr.runtime.CommandListener.start", broken)
    with pytest.raises(RuntimeError, match="could not start"):
        make_manager(instance_id="second", claim_interval_s=3600.0)
    left = [t.name for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    assert left == []
    assert sim.open_sockets() == 0


def test_stop_closes_links_before_the_threads_they_report_to(make_manager, sim):
    mgr = make_manager()
    for tenant in ("a", "b", "c"):
        mgr.connect(tenant)
        mgr.wait_for(tenant, TenantState.CONNECTED, timeout=5)
    mgr.stop()
    assert sim.open_sockets() == 0
    reader = make_manager(claim_tenants=False, instance_id="reader")  # reads what is left
    assert reader.leases_held() == 0
    assert mgr.config.instance_id not in {lease.owner for lease in reader.leases_store.all()}
    assert {s.state for s in reader.statuses()} == {TenantState.STOPPED}


# --- a stop with the database gone (issue #13, defect 8) ----------------------------------

#: Seconds the stop may take once the links are closed, with the database gone.
AFTER_LINKS_S = 5.0


@pytest.mark.slow
def test_a_stop_with_the_database_gone_closes_links_and_ends_within_seconds(
    make_manager, db_proxy, sim, logs
):
    mgr = make_manager(database_url=db_proxy.database_url)
    for tenant in ("a", "b", "c"):
        mgr.connect(tenant)
        mgr.wait_for(tenant, TenantState.CONNECTED, timeout=5)
    db_proxy.stop()  # the database is gone: connections are refused ...
    db_proxy.cut()  # ... and the open ones reset
    links_closed: list[float] = []
    mgr.subscribe(lambda event: sim.open_sockets() == 0 and links_closed.append(time.monotonic()))

    started = time.monotonic()
    mgr.stop()
    ended = time.monotonic()

    assert sim.open_sockets() == 0
    assert links_closed, "no link closed"
    assert ended - links_closed[0] < AFTER_LINKS_S, f"{ended - links_closed[0]:.1f} s"
    assert ended - started < AFTER_LINKS_S + 1.0, f"the stop took {ended - started:.1f} s"
    assert any("stopping with the database unavailable" in line for line in logs)


# --- a stop asked for while starting (issue #13, defect 9) --------------------------------


def _stored_history(database_url: str) -> list[str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT new_state FROM wamgr_status_history").fetchall()
    return [row[0] for row in rows]


@pytest.mark.slow
def test_a_start_cancelled_half_way_stops_what_it_started_and_claims_nothing(
    make_manager, sim, database_url, monkeypatch, tmp_path
):
    seed = make_manager(instance_id="seed", claim_tenants=False)
    seed.tenants_store.set_desired("t1", Desired.CONNECTED)  # to be restored by the next start
    before = {t.ident for t in threading.enumerate()}
    asked = threading.Event()
    original = Sweeper.start

    def sweeper_start_then_a_signal(self) -> None:  # the stop comes just before the claim loop
        original(self)
        asked.set()

    monkeypatch.setattr("wamgr.runtime.Sweeper.start", sweeper_start_then_a_signal)
    mgr = ConnectionManager(make_config(database_url, tmp_path, sim, "cancelled"))

    with pytest.raises(StartCancelled):
        mgr.start(cancel=asked.is_set)

    left = [t.name for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    assert left == []
    assert sim.dial_attempts() == 0
    assert _stored_history(database_url) == []
    with pytest.raises(ManagerStopped):
        mgr.status("t1")
    assert make_manager(instance_id="cancelled").config  # its instance id was released


def test_stop_from_another_thread_while_starting_cancels_the_start(
    sim, database_url, monkeypatch, tmp_path
):
    mgr = ConnectionManager(make_config(database_url, tmp_path, sim, "stopped-early"))
    stopper = threading.Thread(target=mgr.stop, name="test-stopper")
    original = Sweeper.start

    def sweeper_start_then_stop(self) -> None:
        original(self)
        stopper.start()  # stop() flags the start at once, then waits for it to give up
        while not mgr._stop_asked.is_set():
            threading.Event().wait(0.01)

    monkeypatch.setattr("wamgr.runtime.Sweeper.start", sweeper_start_then_stop)

    with pytest.raises(StartCancelled):
        mgr.start()
    stopper.join(5)

    assert not stopper.is_alive()
    assert sim.dial_attempts() == 0
    monkeypatch.undo()
    mgr.start()  # a later start works
    mgr.stop()
