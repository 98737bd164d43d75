"""The runtime: components stop in the reverse of their start order, within one budget, and a
failed start leaves nothing running."""

from __future__ import annotations

import threading

import pytest

from wamgr import TenantState
from wamgr.runtime import _StopSteps


def test_stop_steps_run_newest_first():
    ran: list[str] = []
    steps = _StopSteps()
    for name in ("database", "actors", "claim loop"):
        steps.push(name, lambda _left, name=name: ran.append(name))
    steps.run(5.0)
    assert ran == ["claim loop", "actors", "database"]
    steps.run(5.0)
    assert ran == ["claim loop", "actors", "database"]  # each step runs once


def test_a_failing_step_does_not_skip_the_rest():
    ran: list[str] = []
    steps = _StopSteps()
    steps.push("database", lambda _left: ran.append("database"))
    steps.push("broken", lambda _left: 1 / 0)
    steps.run(5.0)
    assert ran == ["database"]


def test_every_step_gets_what_is_left_of_one_budget():
    budgets: list[float] = []
    steps = _StopSteps()
    steps.push("second", budgets.append)
    steps.push("first", lambda left: (budgets.append(left), threading.Event().wait(0.2)))
    steps.run(1.0)
    assert 0.9 <= budgets[0] <= 1.0
    assert budgets[1] <= budgets[0] - 0.2 + 0.01


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
