"""The HTTP API driven over real HTTP on loopback, on the simulator and a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import psycopg
import pytest
from click.testing import CliRunner
from psycopg.conninfo import conninfo_to_dict

from wamgr import TenantState
from wamgr.api.http import check_binding, is_loopback
from wamgr.cli import main
from wamgr.errors import ConfigError
from wamgr.transport.sim import SimWhatsApp

CONNECTED = TenantState.CONNECTED
Serve = Callable[..., httpx.Client]

#: Every /api route, with a body where it needs one.
API_ROUTES = [
    ("GET", "/api/status", None),
    ("GET", "/api/tenants", None),
    ("PUT", "/api/tenants/t1", None),
    ("GET", "/api/tenants/t1", None),
    ("DELETE", "/api/tenants/t1", None),
    ("POST", "/api/tenants/t1/connect", None),
    ("POST", "/api/tenants/t1/reconnect", None),
    ("POST", "/api/tenants/t1/disconnect", None),
    ("POST", "/api/tenants/t1/logout", None),
    ("GET", "/api/tenants/t1/active", None),
    ("GET", "/api/tenants/t1/qr?format=svg", None),
    ("POST", "/api/tenants/t1/pair-code", {"phone": "15551234567"}),
    ("POST", "/api/tenants/t1/messages", {"to": "15550001111", "text": "hi"}),
    ("POST", "/api/locks/k1", {"ttl": 30}),
    ("POST", "/api/locks/k1/extend", {"token": 1, "ttl": 30}),
    ("DELETE", "/api/locks/k1?token=1", None),
]
#: Tenant routes that answer 404 for a tenant never added.
TENANT_ROUTES = [r for r in API_ROUTES if "/tenants/t1" in r[1] and r[0] != "PUT"]


def _error(response, status: int, error: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"] == error, body
    assert body["message"], body
    return body


# --- access ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), API_ROUTES, ids=lambda r: str(r))
def test_every_api_route_needs_the_key(mgr, serve_api: Serve, method, path, body) -> None:
    api = serve_api(mgr)
    no_key = {"x-api-key": ""}  # overrides the client's header

    missing = api.request(method, path, json=body, headers=no_key)
    wrong = api.request(method, path, json=body, headers={"x-api-key": "not-the-key"})
    bearer_wrong = api.request(
        method, path, json=body, headers=no_key | {"authorization": "Bearer nope"}
    )

    assert "no API key given" in _error(missing, 401, "ApiKeyRequired")["message"]
    assert "WAMGR_API_KEY" in _error(wrong, 401, "ApiKeyRequired")["message"]
    _error(bearer_wrong, 401, "ApiKeyRequired")
    assert missing.headers["www-authenticate"] == "Bearer"


def test_the_key_works_as_header_and_as_bearer(mgr, serve_api: Serve, api_key: str) -> None:
    api = serve_api(mgr)
    no_key = {"x-api-key": ""}

    assert api.get("/api/tenants").status_code == 200
    by_bearer = api.get("/api/tenants", headers=no_key | {"authorization": f"Bearer {api_key}"})
    assert by_bearer.status_code == 200


def test_docs_openapi_and_metrics_need_no_key(mgr, serve_api: Serve) -> None:
    api = serve_api(mgr)
    no_key = {"x-api-key": ""}

    spec = api.get("/openapi.json", headers=no_key)
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    for _, path, _ in API_ROUTES:
        template = path.split("?")[0].replace("t1", "{tenant_id}").replace("k1", "{key}")
        assert template in paths, template
    assert api.get("/docs", headers=no_key).status_code == 200
    assert api.get("/metrics", headers=no_key).status_code == 200


def test_without_a_key_configured_every_route_is_open(mgr, serve_api: Serve) -> None:
    api = serve_api(mgr, api_key=None)

    assert api.get("/api/tenants").status_code == 200


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.1.2.3"])
def test_loopback_may_be_served_without_a_key(host: str) -> None:
    assert is_loopback(host)
    check_binding(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_binding_beyond_loopback_without_a_key_is_refused(host: str) -> None:
    with pytest.raises(ConfigError, match=r"refusing to listen on .* without an API key"):
        check_binding(host, None)
    check_binding(host, "a-key")  # with a key it is fine


def test_serve_refuses_a_public_address_without_a_key(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("WAMGR_API_KEY", raising=False)
    result = CliRunner().invoke(
        main,
        ["--home", str(tmp_path), "serve", "--transport", "sim", "--host", "0.0.0.0"],
        prog_name="wamgr",
    )

    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("wamgr: refusing to listen on 0.0.0.0 without an API key")
    assert "WAMGR_API_KEY" in result.stderr


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), TENANT_ROUTES, ids=lambda r: str(r))
def test_an_unknown_tenant_is_404(mgr, serve_api: Serve, method, path, body) -> None:
    api = serve_api(mgr)

    body = _error(api.request(method, path, json=body), 404, "UnknownTenant")

    assert body["tenant_id"] == "t1"
    assert "add it first" in body["message"]


def test_bad_input_is_422_with_a_readable_message(mgr, serve_api: Serve) -> None:
    api = serve_api(mgr)
    api.put("/api/tenants/t1")

    bad_id = _error(api.put("/api/tenants/bad%20id"), 422, "InvalidTenantId")
    no_text = _error(api.post("/api/tenants/t1/messages", json={"to": "1"}), 422, "InvalidRequest")
    not_json = api.post("/api/tenants/t1/messages", content=b"{", headers={"content-type": "x"})
    bad_format = _error(api.get("/api/tenants/t1/qr?format=bmp"), 422, "InvalidRequest")
    bad_ttl = _error(api.post("/api/locks/k", json={"ttl": -1}), 422, "InvalidDuration")
    bad_phone = _error(
        api.post("/api/tenants/t1/pair-code", json={"phone": "call me"}), 422, "InvalidPhone"
    )

    assert "1 to 64 characters" in bad_id["message"]
    assert "body.text: Field required" in no_text["message"]
    assert not_json.status_code == 422
    assert "'png', 'svg' or 'text'" in bad_format["message"]
    assert "ttl must be" in bad_ttl["message"]
    assert "international number" in bad_phone["message"]


def test_unknown_routes_and_methods_answer_json(mgr, serve_api: Serve) -> None:
    api = serve_api(mgr)

    assert "/docs" in _error(api.get("/api/nothing"), 404, "HTTPError")["message"]
    assert "not allowed" in _error(api.patch("/api/tenants"), 405, "HTTPError")["message"]


# --- health ----------------------------------------------------------------------------------


def test_health_reports_instance_database_tenants_and_leases(mgr, serve_api: Serve) -> None:
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


def test_health_is_503_when_the_database_is_unreachable(
    make_manager, serve_api: Serve, database_url: str, pg_server_url: str
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


# --- tenants ---------------------------------------------------------------------------------


def test_put_creates_then_keeps_and_get_shows_every_status_field(mgr, serve_api: Serve) -> None:
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
    }
    assert shown["state"] == "connected" and shown["owner"] == "inst-0" and shown["jid"]
    assert [t["tenant_id"] for t in listed] == ["t1"]


def test_commands_through_the_api(mgr, serve_api: Serve, sim: SimWhatsApp) -> None:
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


def test_delete_stops_the_tenant_with_or_without_logout(
    mgr, serve_api: Serve, sim: SimWhatsApp
) -> None:
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


# --- pairing ---------------------------------------------------------------------------------


def test_qr_in_each_format_while_pairing(make_manager, serve_api: Serve, clock) -> None:
    manual = SimWhatsApp(auto_pair=False, clock=clock)
    mgr = make_manager(transport=manual)
    api = serve_api(mgr)
    api.put("/api/tenants/t1")
    mgr.wait_for("t1", TenantState.PAIRING, timeout=5)

    png = api.get("/api/tenants/t1/qr", params={"format": "png"})
    svg = api.get("/api/tenants/t1/qr", params={"format": "svg"})
    text = api.get("/api/tenants/t1/qr", params={"format": "text"})
    default = api.get("/api/tenants/t1/qr")

    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert "<svg" in svg.text
    assert text.headers["content-type"].startswith("text/plain")
    assert "█" in text.text
    assert default.content == png.content
    assert png.headers["cache-control"] == "no-store"

    code = api.post("/api/tenants/t1/pair-code", json={"phone": "+1 555 123 4567"})
    assert code.status_code == 200
    manual.enter_code(code.json()["code"])
    mgr.wait_for("t1", CONNECTED, timeout=5)

    body = _error(api.get("/api/tenants/t1/qr?format=svg"), 409, "NotPairing")
    assert body["state"] == "connected"
    _error(api.post("/api/tenants/t1/pair-code", json={"phone": "15551234567"}), 409, "NotPairing")


# --- messages --------------------------------------------------------------------------------


def test_a_message_is_sent_when_connected_and_refused_when_not(
    mgr, serve_api: Serve, sim: SimWhatsApp
) -> None:
    api = serve_api(mgr)
    api.put("/api/tenants/t1")
    jid = mgr.wait_for("t1", CONNECTED, timeout=5).jid

    sent = api.post("/api/tenants/t1/messages", json={"to": "15550001111", "text": "hello"})

    assert sent.status_code == 202
    message_id = sent.json()["message_id"]
    assert sim.sent_messages(jid)[-1] == ("15550001111", "hello", message_id)

    api.post("/api/tenants/t1/disconnect")
    refused = api.post("/api/tenants/t1/messages", json={"to": "15550001111", "text": "again"})

    body = _error(refused, 409, "NotConnected")
    assert body["state"] == "stopped"
    assert "connect it first" in body["message"]
    assert len(sim.sent_messages(jid)) == 1


# --- processing locks ------------------------------------------------------------------------


def test_processing_locks_claim_extend_release(mgr, serve_api: Serve) -> None:
    api = serve_api(mgr)
    key = "shop-1/15550001111"  # a slash is fine

    claimed = api.post(f"/api/locks/{key}", json={"ttl": 30})
    busy = api.post(f"/api/locks/{key}", json={"ttl": 30})

    assert claimed.status_code == 201
    token = claimed.json()["token"]
    assert claimed.json()["key"] == key
    body = _error(busy, 409, "LockBusy")
    assert body["expires_at"] == claimed.json()["expires_at"].replace("Z", "+00:00")
    assert body["owner"] == "inst-0"

    extended = api.post(f"/api/locks/{key}/extend", json={"token": token, "ttl": 60})
    assert extended.status_code == 200
    assert extended.json()["expires_at"] > claimed.json()["expires_at"]
    stale = api.post(f"/api/locks/{key}/extend", json={"token": token + 100, "ttl": 60})
    assert "claim the key again" in _error(stale, 409, "LockNotHeld")["message"]

    _error(api.delete(f"/api/locks/{key}", params={"token": token + 100}), 409, "LockNotHeld")
    released = api.delete(f"/api/locks/{key}", params={"token": token})
    assert released.status_code == 204 and released.content == b""
    _error(api.delete(f"/api/locks/{key}", params={"token": token}), 409, "LockNotHeld")

    again = api.post(f"/api/locks/{key}")  # no body: 30 s
    assert again.status_code == 201 and again.json()["token"] > token
