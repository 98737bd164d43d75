"""The tenant in the path is validated and looked up once, before the route runs."""

from __future__ import annotations

import pytest

#: Bodies of the tenant routes that take one (valid, so only the tenant can be wrong).
BODIES = {
    "/api/tenants/{tenant_id}/pair-code": {"phone": "15551234567"},
    "/api/tenants/{tenant_id}/messages": {"to": "15550001111", "text": "hi"},
}


def _tenant_routes(api_routes) -> list[tuple[str, str]]:
    return [r for r in api_routes if "{tenant_id}" in r[1]]


@pytest.mark.slow
def test_an_unknown_tenant_is_404_on_every_route_but_put(
    mgr, serve_api, api_routes, api_error
) -> None:
    api = serve_api(mgr)
    routes = [r for r in _tenant_routes(api_routes) if r[0] != "PUT"]
    assert len(routes) >= 10, routes

    for method, template in routes:
        path = template.replace("{tenant_id}", "ghost")
        response = api.request(method, path, json=BODIES.get(template))

        body = api_error(response, 404, "UnknownTenant")
        assert body["tenant_id"] == "ghost", (method, template)
        assert "add it first" in body["message"]
    assert mgr.statuses() == []  # no route created it on the way


def test_an_invalid_tenant_id_is_422_on_every_tenant_route(
    mgr, serve_api, api_routes, api_error
) -> None:
    api = serve_api(mgr)

    for method, template in _tenant_routes(api_routes):
        path = template.replace("{tenant_id}", "no%20spaces")
        response = api.request(method, path, json=BODIES.get(template))

        body = api_error(response, 422, "InvalidTenantId")
        assert "1 to 64 characters" in body["message"], (method, template)
