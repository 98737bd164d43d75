"""Pair codes and clear_auth through the manager, on the simulator."""

from __future__ import annotations

import pytest

from wamgr import InvalidPhone, NotPairing, TenantState, UnknownTenant
from wamgr.transport.sim import SimWhatsApp

CONNECTED = TenantState.CONNECTED


@pytest.fixture
def manual_sim(clock):
    return SimWhatsApp(auto_pair=False, clock=clock)


def test_pair_by_code_instead_of_qr(make_manager, manual_sim):
    mgr = make_manager(transport=manual_sim)
    mgr.connect("t1")
    mgr.wait_for("t1", TenantState.PAIRING, timeout=5)
    code = mgr.pair_code("t1", "+1 555-123-4567")
    jid = manual_sim.enter_code(code)
    assert mgr.wait_for("t1", CONNECTED, timeout=5).jid == jid


def test_pair_code_refused_unless_pairing(make_manager, sim):
    mgr = make_manager()
    with pytest.raises(UnknownTenant):
        mgr.pair_code("t1", "15551234567")
    mgr.connect("t1")
    mgr.wait_for("t1", CONNECTED, timeout=5)
    with pytest.raises(NotPairing, match="state connected"):
        mgr.pair_code("t1", "15551234567")


@pytest.mark.parametrize("phone", ["", "12345", "1" * 16, "call me", None])
def test_bad_phone_numbers_say_what_is_expected(mgr, phone):
    with pytest.raises(InvalidPhone, match="international number"):
        mgr.pair_code("t1", phone)


def test_clear_auth_forgets_only_that_tenant_and_re_pairs_on_connect(make_manager, sim):
    mgr = make_manager()
    mgr.connect("a")
    mgr.connect("b")
    jid_a = mgr.wait_for("a", CONNECTED, timeout=5).jid
    jid_b = mgr.wait_for("b", CONNECTED, timeout=5).jid

    status = mgr.clear_auth("a")
    assert status.state is TenantState.LOGGED_OUT and status.jid is None
    assert "connect to pair again" in status.last_error
    assert sim.open_sockets(jid_a) == 0 and sim.logouts(jid_a) == 0
    assert mgr.leases_store.holder("a") is None
    assert mgr.status("b").state is CONNECTED and sim.open_sockets(jid_b) == 1

    mgr.connect("a")
    assert mgr.wait_for("a", CONNECTED, timeout=5).jid not in (None, jid_a)


def test_clear_auth_of_an_unknown_tenant(mgr):
    with pytest.raises(UnknownTenant):
        mgr.clear_auth("nobody")
