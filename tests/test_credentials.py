"""Clearing credentials offline (``wamgr clear-auth``) ends where the live path ends."""

from __future__ import annotations

import pytest

from wamgr import HeldElsewhere, TenantState, UnknownTenant
from wamgr.actors.tenant_device import CLEARED_BY_OPERATOR
from wamgr.credentials import clear_credentials

CONNECTED = TenantState.CONNECTED


def _paired(make_manager, tenant: str, **overrides) -> tuple[object, str]:
    mgr = make_manager(**overrides)
    mgr.connect(tenant)
    return mgr, mgr.wait_for(tenant, CONNECTED, timeout=5).jid


def test_offline_and_live_clearing_leave_the_same_status(make_manager, sim, monkeypatch):
    cleared: list[tuple[str, str | None]] = []
    clear_auth = sim.clear_auth
    monkeypatch.setattr(
        sim, "clear_auth", lambda t, jid: (cleared.append((t, jid)), clear_auth(t, jid))
    )
    # claim_tenants off: the live manager must not take over "offline" when its instance
    # stops and hands it over.
    live_mgr, live_jid = _paired(make_manager, "live", claim_tenants=False)
    live = live_mgr.clear_auth("live")
    offline_mgr, offline_jid = _paired(make_manager, "offline", instance_id="other")
    offline_mgr.stop()

    offline = clear_credentials(live_mgr.runtime.db, sim, "offline")

    for status in (live, offline):
        assert status.state is TenantState.LOGGED_OUT
        assert status.jid is None and status.owner is None and status.attempt == 0
        assert status.last_error == CLEARED_BY_OPERATOR
    assert cleared == [("live", live_jid), ("offline", offline_jid)]
    assert live_mgr.runtime.leases.holder("offline") is None  # the tool gave its lease back


def test_offline_clearing_refuses_a_tenant_a_live_instance_holds(make_manager, sim):
    mgr, _ = _paired(make_manager, "t1")
    with pytest.raises(HeldElsewhere, match=mgr.config.instance_id):
        clear_credentials(mgr.runtime.db, sim, "t1")
    assert mgr.is_connection_active("t1")


def test_offline_clearing_of_an_unknown_tenant(mgr, sim):
    with pytest.raises(UnknownTenant):
        clear_credentials(mgr.runtime.db, sim, "nobody")
