"""The tenant routes: list, create, show, connect, reconnect, disconnect, logout, delete."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from wamgr import TenantState
from wamgr.transport.sim import SimWhatsApp

CONNECTED = TenantState.CONNECTED


@pytest.mark.slow
def test_put_creates_then_keeps_and_get_shows_every_status_field(mgr, serve_api) -> None:
    api = serve_api(mgr)

    created = api.put("/api/tenants/t1")
    again = api.put("/api/tenants/t1")
    mgr.wait_for("t1", CONNECTED, timeout=5)
    shown = api.get("/api/tenants/t1").json()
    listed = api.get("/api/tenants").json()

    assert created.status_code == 201
    assert again.status_code == 200
    assert set(shown) == {
        "tenant_id",
        "state",
        "jid",
        "owner",
        "attempt",
        "next_retry_at",
        "last_error",
        "updated_at",
        "settings",
    }
    assert shown["state"] == "connected" and shown["owner"] == "inst-0" and shown["jid"]
    assert [t["tenant_id"] for t in listed] == ["t1"]


def test_commands_through_the_api(mgr, serve_api, sim: SimWhatsApp) -> None:
    api = serve_api(mgr)
    api.put("/api/tenants/t1")
    jid = mgr.wait_for("t1", CONNECTED, timeout=5).jid
    assert api.get("/api/tenants/t1/active").json() == {"active": True}

    dials = sim.dial_attempts("t1")
    assert api.post("/api/tenants/t1/reconnect").status_code == 200
    mgr.wait_for("t1", CONNECTED, timeout=5)
    assert sim.dial_attempts("t1") == dials + 1

    disconnected = api.post("/api/tenants/t1/disconnect")
    assert disconnected.status_code == 200 and disconnected.json()["state"] == "stopped"
    assert api.get("/api/tenants/t1/active").json() == {"active": False}
    assert sim.logouts(jid) == 0

    assert api.post("/api/tenants/t1/connect").status_code == 200
    mgr.wait_for("t1", CONNECTED, timeout=5)

    logged_out = api.post("/api/tenants/t1/logout")
    assert logged_out.json()["state"] == "stopped" and logged_out.json()["jid"] is None
    assert sim.logouts(jid) == 1


@pytest.mark.slow
def test_delete_stops_the_tenant_with_or_without_logout(mgr, serve_api, sim: SimWhatsApp) -> None:
    api = serve_api(mgr)
    api.put("/api/tenants/a")
    api.put("/api/tenants/b")
    jid_a = mgr.wait_for("a", CONNECTED, timeout=5).jid
    jid_b = mgr.wait_for("b", CONNECTED, timeout=5).jid

    kept = api.delete("/api/tenants/a?logout=false")
    unlinked = api.delete("/api/tenants/b", params={"logout": "true"})

    assert kept.status_code == 200 and kept.json()["state"] == "stopped"
    assert kept.json()["jid"] == jid_a  # paired still: a PUT resumes without a QR
    assert sim.logouts(jid_a) == 0
    assert unlinked.json()["jid"] is None
    assert sim.logouts(jid_b) == 1
    assert api.get("/api/tenants/a").json()["state"] == "stopped"


@pytest.mark.slow
def test_of_concurrent_puts_of_a_new_tenant_exactly_one_is_201(mgr, serve_api) -> None:
    api = serve_api(mgr)
    callers = 20
    start = threading.Barrier(callers)

    def put(_: int) -> int:
        start.wait(timeout=10)
        return api.put("/api/tenants/new").status_code

    with ThreadPoolExecutor(callers) as pool:
        statuses = Counter(pool.map(put, range(callers)))

    assert statuses == {201: 1, 200: callers - 1}
    assert mgr.tenants_store.add("new") is False
