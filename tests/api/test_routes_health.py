"""GET /api/status (health) and GET /metrics."""

from __future__ import annotations

import time

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from psycopg.conninfo import conninfo_to_dict

from wamgr import TenantState
from wamgr.store.db import PING_TIMEOUT_S

CONNECTED = TenantState.CONNECTED


def test_health_reports_instance_database_tenants_and_leases(mgr, serve_api) -> None:
    api = serve_api(mgr)
    mgr.connect("a")
    mgr.connect("b")
    mgr.wait_for("a", CONNECTED, timeout=5)
    mgr.wait_for("b", CONNECTED, timeout=5)
    mgr.remove("b")

    health = api.get("/api/status")

    assert health.status_code == 200
    assert health.json() == {
        "instance_id": "inst-0",
        "database": "ok",
        "tenants": {"connected": 1, "stopped": 1},
        "leases_held": 1,
    }


@pytest.mark.slow
def test_health_is_503_when_the_database_is_unreachable(
    make_manager, serve_api, database_url: str, pg_server_url: str
) -> None:
    mgr = make_manager(call_timeout_s=1.0)
    api = serve_api(mgr)
    name = conninfo_to_dict(database_url)["dbname"]
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        try:
            health = api.get("/api/status")
        finally:
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')

    assert health.status_code == 503
    body = health.json()
    assert body["instance_id"] == "inst-0"
    assert body["database"].startswith("database unavailable")
    assert "WAMGR_DATABASE_URL" in body["database"]
    assert body["leases_held"] is None


@pytest.mark.slow
def test_metrics_are_served_without_the_key_in_the_prometheus_text_format(mgr, serve_api) -> None:
    api = serve_api(mgr)
    mgr.connect("t1")
    mgr.wait_for("t1", CONNECTED, timeout=5)

    response = api.get("/metrics", headers={"x-api-key": ""})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
    assert samples[("wamgr_tenants", (("state", "connected"),))] == 1
    assert samples[("wamgr_connects_total", ())] == 1


#: Seconds GET /api/status may take with the database gone (issue #13, defect 8: 10 s each),
#: plus room for HTTP on a busy host.
HEALTH_BOUND_S = PING_TIMEOUT_S + 0.5


@pytest.mark.parametrize("outage", ["stopped", pytest.param("frozen", marks=pytest.mark.slow)])
@pytest.mark.slow
def test_health_answers_503_within_a_second_when_the_database_is_gone(
    make_manager, serve_api, db_proxy, outage: str
) -> None:
    mgr = make_manager(database_url=db_proxy.database_url)  # call_timeout: 10 s
    api = serve_api(mgr)
    assert api.get("/api/status").status_code == 200
    if outage == "stopped":
        db_proxy.stop()  # connections refused ...
        db_proxy.cut()  # ... and the open ones reset
    else:
        db_proxy.freeze()  # a partition: no error, no answer
    try:
        for _ in range(3):
            started = time.monotonic()
            health = api.get("/api/status")
            took = time.monotonic() - started

            assert health.status_code == 503
            assert took < HEALTH_BOUND_S, f"/api/status took {took:.1f} s"
            assert health.json()["database"].startswith("database unavailable")
    finally:
        db_proxy.thaw()
