"""The dashboard's pages over HTTP: the fleet paged, filtered and searched in the database,
a tenant's page, the instances and webhooks pages, errors shown as pages (the API's stay
JSON), ``/`` leading to the dashboard, and ``/docs`` with no file from a CDN."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from wamgr import ConnectionManager
from wamgr.status import TenantState

from .conftest import csrf_of

_ROW = re.compile(r'<tr data-tenant="([^"]+)" data-state="([^"]+)">')


def _rows(html: str) -> list[tuple[str, str]]:
    return _ROW.findall(html)


def _insert(mgr: ConnectionManager, states: dict[str, str]) -> None:
    with mgr.runtime.db.connection() as conn:
        conn.execute(
            "INSERT INTO wamgr_tenants (tenant_id, state, desired)"
            " SELECT t, s, 'stopped' FROM unnest(%s::text[], %s::text[]) AS x(t, s)",
            (list(states), list(states.values())),
        )


@pytest.mark.slow
def test_the_fleet_pages_filters_and_searches(signed_in: httpx.Client, mgr) -> None:
    states = {f"t{n:03d}": "failed" if n % 10 == 0 else "stopped" for n in range(120)}
    _insert(mgr, states)

    first = signed_in.get("/dashboard").text
    assert _rows(first) == [(t, states[t]) for t in sorted(states)[:50]]
    assert "Tenants 1–50 of 120" in first and "page 1 of 3" in first
    assert 'data-count="failed">12<' in first and 'data-count="stopped">108<' in first

    third = signed_in.get("/dashboard", params={"page": 3}).text
    assert [t for t, _ in _rows(third)] == sorted(states)[100:]
    assert 'rel="prev"' in third and 'rel="next"' not in third
    assert _rows(signed_in.get("/dashboard", params={"page": 9}).text) == _rows(third)

    failed = signed_in.get("/dashboard", params={"state": "failed"}).text
    assert {s for _, s in _rows(failed)} == {"failed"} and len(_rows(failed)) == 12
    found = signed_in.get("/dashboard", params={"q": "T11"}).text
    assert [t for t, _ in _rows(found)] == [f"t11{n}" for n in range(10)]
    assert "No tenant" in signed_in.get("/dashboard", params={"q": "zzz"}).text
    # an unknown state filters nothing; a bad page number is refused
    assert len(_rows(signed_in.get("/dashboard", params={"state": "bogus"}).text)) == 50
    assert signed_in.get("/dashboard", params={"page": 0}).status_code == 422


@pytest.mark.slow
def test_ten_thousand_tenants_are_served_a_page_at_a_time(signed_in, mgr) -> None:
    _insert(mgr, {f"shop-{n:05d}": "connected" for n in range(10_000)})
    signed_in.get("/dashboard")  # the first request of a session warms its connection up

    for params in ({}, {"page": 150}, {"state": "connected", "q": "shop-09"}):
        started = time.monotonic()
        page = signed_in.get("/dashboard", params=params)
        took = time.monotonic() - started
        assert page.status_code == 200 and len(_rows(page.text)) == 50
        assert took < 2.0, f"{params}: {took:.2f} s"  # the first screen's budget


def test_a_tenant_page_shows_status_actions_and_history(signed_in, mgr) -> None:
    mgr.connect("t1")
    mgr.wait_for("t1", TenantState.CONNECTED, timeout=5)
    mgr.runtime.writer.flush(5)

    page = signed_in.get("/dashboard/tenants/t1")
    assert page.status_code == 200
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert 'data-state="connected"' in page.text
    for command in ("connect", "reconnect", "disconnect", "logout", "clear-auth"):
        assert f'action="/dashboard/tenants/t1/{command}"' in page.text
    assert page.text.count("data-confirm=") == 3  # disconnect, logout, clear-auth
    assert page.text.count(f'value="{csrf_of(page.text)}"') >= 6  # every form, sign-out too
    timeline = page.text.split('<ol class="timeline">')[1].split("</ol>")[0]
    assert "→" in timeline and "state-connected" in timeline  # changes coalesce as written


@pytest.mark.slow
def test_errors_are_pages_in_the_dashboard_and_json_in_the_api(signed_in) -> None:
    page = signed_in.get("/dashboard/tenants/nobody")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "UnknownTenant" in page.text
    api = signed_in.get("/api/tenants/nobody", headers={"x-api-key": "wrong"})
    assert api.status_code == 401 and api.json()["error"] == "ApiKeyRequired"


@pytest.mark.slow
def test_instances_and_webhooks_pages(signed_in, mgr) -> None:
    instances = signed_in.get("/dashboard/instances").text
    assert 'data-instance="inst-0"' in instances and "(this one)" in instances

    outbox = mgr.runtime.outbox
    outbox.disable_endpoint("http://127.0.0.1:9/gone", "410 Gone")
    page = signed_in.get("/dashboard/webhooks").text
    assert "410 Gone" in page and "Re-enable" in page
    enabled = signed_in.post(
        "/dashboard/webhooks/enable",
        data={"csrf": csrf_of(page), "url": "http://127.0.0.1:9/gone"},
    )
    assert enabled.status_code == 303
    assert outbox.disabled_endpoints() == {}
    assert "Endpoint enabled again." in signed_in.get("/dashboard/webhooks").text


@pytest.mark.slow
def test_root_leads_to_the_dashboard_and_docs_load_nothing_from_elsewhere(client) -> None:
    assert client.get("/").headers["location"] == "/dashboard"
    docs = client.get("/docs")
    assert docs.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert sources and all(s.startswith("/") for s in sources), sources
    for source in sources:
        assert client.get(source).status_code == 200, source
    assert client.get("/dashboard/static/dashboard.js").status_code == 200
