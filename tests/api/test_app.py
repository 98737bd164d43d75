"""The app as a whole: the API key on every /api route, the one error mapping, open docs."""

from __future__ import annotations

import types

import pytest

from wamgr.config import Config
from wamgr.errors import OperationTimeout

#: A concrete path for each path parameter of the routes.
EXAMPLES = {"{tenant_id}": "t1", "{key}": "k1", "{message_id}": "m1"}


def _concrete(template: str) -> str:
    for name, value in EXAMPLES.items():
        template = template.replace(name, value)
    return template


# --- access ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_every_api_route_in_the_route_table_needs_the_key(
    mgr, serve_api, api_routes, api_error
) -> None:
    api = serve_api(mgr)
    no_key = {"x-api-key": ""}  # overrides the client's header
    assert len(api_routes) >= 16, api_routes  # the table was read, not an empty list

    for method, template in api_routes:
        path = _concrete(template)
        # No body: the key is checked before anything else the route needs.
        missing = api.request(method, path, headers=no_key)
        wrong = api.request(method, path, headers={"x-api-key": "not-the-key"})
        bearer_wrong = api.request(method, path, headers=no_key | {"authorization": "Bearer x"})

        where = f"{method} {template}"
        assert "no API key given" in api_error(missing, 401, "ApiKeyRequired")["message"], where
        assert "WAMGR_API_KEY" in api_error(wrong, 401, "ApiKeyRequired")["message"], where
        api_error(bearer_wrong, 401, "ApiKeyRequired")
        assert missing.headers["www-authenticate"] == "Bearer", where


@pytest.mark.slow
def test_the_key_works_as_header_and_as_bearer(mgr, serve_api, api_key: str) -> None:
    api = serve_api(mgr)
    no_key = {"x-api-key": ""}

    assert api.get("/api/tenants").status_code == 200
    by_bearer = api.get("/api/tenants", headers=no_key | {"authorization": f"Bearer {api_key}"})
    assert by_bearer.status_code == 200


@pytest.mark.slow
def test_docs_openapi_and_metrics_need_no_key(mgr, serve_api, api_routes) -> None:
    api = serve_api(mgr)
    no_key = {"x-api-key": ""}

    spec = api.get("/openapi.json", headers=no_key)
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    for method, template in api_routes:
        operation = paths[template][method.lower()]
        schemes = {name for requirement in operation["security"] for name in requirement}
        assert schemes == {"APIKeyHeader", "HTTPBearer"}, (method, template)
    assert "security" not in paths["/metrics"]["get"]
    assert api.get("/docs", headers=no_key).status_code == 200
    assert api.get("/metrics", headers=no_key).status_code == 200


@pytest.mark.slow
def test_without_a_key_configured_every_route_is_open(mgr, serve_api) -> None:
    api = serve_api(mgr, api_key=None)

    assert api.get("/api/tenants").status_code == 200


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_bad_input_is_422_with_a_readable_message(mgr, serve_api, api_error) -> None:
    api = serve_api(mgr)
    api.put("/api/tenants/t1")

    bad_id = api_error(api.put("/api/tenants/bad%20id"), 422, "InvalidTenantId")
    no_text = api_error(
        api.post("/api/tenants/t1/messages", json={"to": "1"}), 422, "InvalidRequest"
    )
    not_json = api.post("/api/tenants/t1/messages", content=b"{", headers={"content-type": "x"})
    bad_format = api_error(api.get("/api/tenants/t1/qr?format=bmp"), 422, "InvalidRequest")
    bad_ttl = api_error(api.post("/api/locks/k", json={"ttl": -1}), 422, "InvalidDuration")
    bad_phone = api_error(
        api.post("/api/tenants/t1/pair-code", json={"phone": "call me"}), 422, "InvalidPhone"
    )

    assert "1 to 64 characters" in bad_id["message"]
    assert "body.text: Field required" in no_text["message"]
    assert not_json.status_code == 422
    assert "'png', 'svg' or 'text'" in bad_format["message"]
    assert "ttl must be" in bad_ttl["message"]
    assert "international number" in bad_phone["message"]


@pytest.mark.slow
def test_unknown_routes_and_methods_answer_json(mgr, serve_api, api_error) -> None:
    api = serve_api(mgr)

    assert "/docs" in api_error(api.get("/api/nothing"), 404, "HTTPError")["message"]
    assert "not allowed" in api_error(api.patch("/api/tenants"), 405, "HTTPError")["message"]


def test_a_stopped_manager_answers_503(make_manager, serve_api, api_error) -> None:
    mgr = make_manager()
    api = serve_api(mgr)
    mgr.stop()

    body = api_error(api.get("/api/tenants"), 503, "ManagerStopped")

    assert "start a new one" in body["message"]


def _failing_manager(error: Exception) -> types.SimpleNamespace:
    """A stand-in for the manager whose ``statuses()`` raises ``error``."""

    def statuses() -> list:
        raise error

    return types.SimpleNamespace(statuses=statuses, config=Config())


@pytest.mark.slow
def test_an_error_answers_with_its_own_status_and_a_bug_with_500(serve_api, api_error) -> None:
    slow = serve_api(_failing_manager(OperationTimeout("statuses()", 2.0)))
    buggy = serve_api(_failing_manager(KeyError("oops")))

    timed_out = slow.get("/api/tenants")
    broken = buggy.get("/api/tenants")

    assert "did not complete within 2 s" in api_error(timed_out, 504, "OperationTimeout")["message"]
    body = api_error(broken, 500, "InternalError")
    assert body["message"].startswith("KeyError: the server failed")
    assert "oops" not in body["message"]  # the detail stays in the log


@pytest.mark.slow
def test_hostile_path_values_are_422_never_500(mgr, serve_api, api_error) -> None:
    api = serve_api(mgr)

    for path in ("a%00b", "a%01b", "%2E", "%2E%2E", "-x", "--help", "%ED%A0%80", "x" * 10_000):
        body = api_error(api.put(f"/api/tenants/{path}"), 422, "InvalidTenantId")
        assert len(body["message"]) < 400, path  # a huge id is not echoed back whole
    assert mgr.statuses() == []


@pytest.mark.slow
def test_a_trailing_slash_is_no_route_not_a_redirect(mgr, serve_api, api_error) -> None:
    api = serve_api(mgr)

    for method, path in (("PUT", "/api/tenants/"), ("GET", "/api/tenants/"), ("GET", "/api/")):
        api_error(api.request(method, path), 404, "HTTPError")
