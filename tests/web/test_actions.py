"""The tenant page's buttons over HTTP: a command runs and the page says so; a destructive
one first answers with a page that asks, and runs only when confirmed; a failure is shown
as a message, not an error page."""

from __future__ import annotations

import pytest

from wamgr.status import TenantState
from wamgr.transport.sim import SimWhatsApp

from .conftest import csrf_of

CONNECTED = TenantState.CONNECTED


def _connected(mgr, tenant_id: str = "t1") -> str:
    mgr.connect(tenant_id)
    return mgr.wait_for(tenant_id, CONNECTED, timeout=5).jid


@pytest.mark.slow
def test_reconnect_runs_and_the_page_says_so(signed_in, mgr, sim: SimWhatsApp) -> None:
    jid = _connected(mgr)
    token = csrf_of(signed_in.get("/dashboard/tenants/t1").text)

    done = signed_in.post("/dashboard/tenants/t1/reconnect", data={"csrf": token})
    assert done.status_code == 303 and done.headers["location"] == "/dashboard/tenants/t1"
    mgr.wait_for("t1", CONNECTED, timeout=5)
    assert len(sim.sockets(jid)) == 2 and sim.max_concurrent_sockets(jid) == 1
    page = signed_in.get("/dashboard/tenants/t1").text
    assert "reconnect: done" in page
    assert "reconnect: done" not in signed_in.get("/dashboard/tenants/t1").text  # shown once


def test_a_destructive_command_asks_first(signed_in, mgr, sim: SimWhatsApp) -> None:
    jid = _connected(mgr)
    token = csrf_of(signed_in.get("/dashboard/tenants/t1").text)

    asked = signed_in.post("/dashboard/tenants/t1/disconnect", data={"csrf": token})
    assert asked.status_code == 200 and "Are you sure?" in asked.text
    assert 'name="confirmed" value="yes"' in asked.text
    assert mgr.status("t1").state is CONNECTED and sim.open_sockets(jid) == 1

    done = signed_in.post(
        "/dashboard/tenants/t1/disconnect", data={"csrf": token, "confirmed": "yes"}
    )
    assert done.status_code == 303
    assert mgr.status("t1").state is TenantState.STOPPED and sim.open_sockets(jid) == 0


@pytest.mark.slow
def test_a_failed_command_is_a_message_on_the_page(signed_in, mgr) -> None:
    _connected(mgr)
    token = csrf_of(signed_in.get("/dashboard/tenants/t1").text)

    signed_in.post("/dashboard/tenants/t1/pair-code", data={"csrf": token, "phone": "15550001111"})
    page = signed_in.get("/dashboard/tenants/t1").text
    assert "flash-error" in page and "no pair code" in page
    assert signed_in.post("/dashboard/tenants/t1/explode", data={"csrf": token}).status_code == 404
