"""Sessions survive restarts: a new manager on the same database brings tenants back."""

from __future__ import annotations

import pytest

from wamgr import Config, ConnectionManager, TenantState
from wamgr.transport.sim import SimWhatsApp

CONNECTED = TenantState.CONNECTED


def test_second_manager_restores_desired_connected_tenants(make_manager, sim):
    first = make_manager(instance_id="first")
    jids = {}
    for tenant in ("a", "b", "c"):
        first.connect(tenant)
        jids[tenant] = first.wait_for(tenant, CONNECTED, timeout=5).jid
    first.remove("c")
    first.stop()
    assert sim.open_sockets() == 0

    second = make_manager(instance_id="second")
    for tenant in ("a", "b"):
        status = second.wait_for(tenant, CONNECTED, timeout=5)
        assert status.jid == jids[tenant]  # resumed, not re-paired
        assert status.owner == "second"
    assert second.status("c").state is TenantState.STOPPED
    assert not second.is_connection_active("c")
    assert sim.max_concurrent_sockets() == 1
    assert len(sim.accounts()) == 3


def test_restore_leaves_parked_tenants_for_the_operator(make_manager, sim):
    first = make_manager(instance_id="first")
    first.connect("rogued")
    jid = first.wait_for("rogued", CONNECTED, timeout=5).jid
    sim.connect_rogue(jid)
    first.wait_for("rogued", TenantState.CONFLICT, timeout=5)
    first.stop()

    second = make_manager(instance_id="second")
    assert second.status("rogued").state is TenantState.CONFLICT
    assert sim.dial_attempts("rogued") == 1  # not reconnected behind the operator's back
    assert second.is_connection_active("rogued") is False


def test_a_tenant_held_by_a_live_instance_is_standby_elsewhere(make_manager, sim):
    first = make_manager(instance_id="first")
    first.connect("t1")
    first.wait_for("t1", CONNECTED, timeout=5)

    second = make_manager(instance_id="second")
    status = second.connect("t1")
    assert status.state is TenantState.STANDBY
    assert status.owner == "first"
    assert sim.dial_attempts("t1") == 1
    assert sim.max_concurrent_sockets() == 1


@pytest.mark.slow
def test_embedded_database_when_no_url_is_given(tmp_path, clock):
    sim = SimWhatsApp(auto_pair=True, clock=clock)
    config = Config(database_url=None, home=tmp_path / "home", transport=sim, instance_id="a")
    with ConnectionManager(config) as mgr:
        mgr.connect("t1")
        jid = mgr.wait_for("t1", CONNECTED, timeout=10).jid
    assert (tmp_path / "home" / "pgdata" / "PG_VERSION").exists()
    with ConnectionManager(config) as mgr:
        assert mgr.wait_for("t1", CONNECTED, timeout=10).jid == jid


@pytest.mark.slow
def test_the_neonize_transport_is_chosen_by_name_and_hosts_end_with_the_manager(
    database_url, tmp_path
):
    config = Config(
        database_url=database_url, home=tmp_path, transport="neonize", claim_tenants=False
    )
    with ConnectionManager(config) as mgr:
        mgr.connect("t1")
        status = mgr.wait_for("t1", TenantState.BACKOFF, timeout=10)  # no route to WhatsApp
        assert "failed to dial whatsapp web websocket" in status.last_error
        transport = mgr.runtime.transport
        pids = [host["pid"] for host in transport.hosts()]
        assert len(pids) == 1
    assert transport.exited_hosts() == [(pids[0], 0)]
