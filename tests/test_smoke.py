from wamgr import TenantState


def test_connect_pairs_and_connects(mgr, sim):
    status = mgr.connect("t1")
    assert status.tenant_id == "t1"
    connected = mgr.wait_for("t1", TenantState.CONNECTED, timeout=5)
    assert connected.jid is not None
    assert mgr.is_connection_active("t1")
    assert sim.max_concurrent_sockets() == 1
