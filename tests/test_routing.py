"""Commands for tenants held elsewhere: sent to the holder, and applied here within capacity."""

from __future__ import annotations

import pytest

from wamgr import TenantState
from wamgr.status import Desired
from wamgr.store.commands import Command

CONNECTED = TenantState.CONNECTED


@pytest.mark.slow
def test_a_command_for_a_tenant_held_elsewhere_is_forwarded(make_manager):
    owner, other = make_manager(), make_manager()
    owner.connect("t1")
    owner.wait_for("t1", CONNECTED, timeout=5)
    assert owner.runtime.writer.flush(5)  # forward() answers with the stored status

    status = other.runtime.router.forward("t1", Command.RECONNECT)

    assert status is not None and status.owner == owner.config.instance_id


def test_a_command_for_a_tenant_this_instance_holds_is_not_forwarded(mgr):
    mgr.connect("t1")
    mgr.wait_for("t1", CONNECTED, timeout=5)
    assert mgr.runtime.router.forward("t1", Command.RECONNECT) is None


def test_a_connect_sent_here_beyond_capacity_takes_no_lease(make_manager, sim):
    mgr = make_manager(capacity=2)
    for tenant in ("a", "b"):
        mgr.connect(tenant)
        mgr.wait_for(tenant, CONNECTED, timeout=5)
    mgr.tenants_store.set_desired("c", Desired.CONNECTED)

    for command in (Command.CONNECT, Command.RECONNECT):
        mgr.runtime.router.apply("c", command)

    assert mgr.leases_held() == 2
    assert mgr.runtime.leases.live_owner("c") is None
    assert sim.dial_attempts("c") == 0


def test_commands_for_tenants_already_running_here_are_applied_at_capacity(make_manager, sim):
    mgr = make_manager(capacity=1)
    mgr.connect("a")
    mgr.wait_for("a", CONNECTED, timeout=5)
    dials = sim.dial_attempts("a")

    mgr.runtime.router.apply("a", Command.RECONNECT)

    mgr.wait_for("a", CONNECTED, timeout=5)
    assert sim.dial_attempts("a") == dials + 1


def test_commands_from_the_cli_never_push_an_instance_past_its_capacity(
    make_manager, sim, wait_until
):
    """Connects sent to any instance under churn: the one at capacity leaves them to others."""
    full = make_manager(capacity=2, instance_id="full")
    for tenant in ("a", "b"):
        full.connect(tenant)
        full.wait_for(tenant, CONNECTED, timeout=5)
    store = full.runtime.commands
    for tenant in ("c", "d", "e"):
        full.tenants_store.set_desired(tenant, Desired.CONNECTED)
        store.send(tenant, Command.CONNECT, sender=None, anyone=True)

    def commands_left() -> int:
        with full.runtime.db.connection() as conn:
            return conn.execute("SELECT count(*) FROM wamgr_commands").fetchone()[0]

    wait_until(lambda: commands_left() == 0, what="the listener to take the commands")
    assert full.leases_held() == 2
    assert sum(sim.dial_attempts(t) for t in ("c", "d", "e")) == 0
