"""Fixtures of the API tests: the HTTP API of a manager on loopback, driven over real HTTP,
and the route table of an app."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from fastapi import FastAPI, routing

from wamgr import ConnectionManager
from wamgr.api.app import create_app
from wamgr.api.server import HttpServer

API_KEY = "test-key-0123456789"

Serve = Callable[..., httpx.Client]
ApiError = Callable[[httpx.Response, int, str], dict]


@pytest.fixture
def api_key() -> str:
    """The key the test servers are started with."""
    return API_KEY


@pytest.fixture
def serve_api() -> Iterator[Serve]:
    """``serve_api(mgr, api_key=API_KEY)``: serve ``mgr``'s API on 127.0.0.1 (a free port)
    and return a client for it that sends the key; every server is stopped at the end."""
    servers: list[HttpServer] = []
    clients: list[httpx.Client] = []

    def serve(mgr: ConnectionManager, api_key: str | None = API_KEY) -> httpx.Client:
        server = HttpServer(create_app(mgr, api_key), "127.0.0.1", 0).start()
        servers.append(server)
        headers = {"x-api-key": api_key} if api_key else {}
        # Plain HTTP on loopback: verify=False spares building a TLS context (~0.1 s a client).
        client = httpx.Client(base_url=server.url, headers=headers, timeout=15.0, verify=False)
        clients.append(client)
        return client

    yield serve
    for client in clients:
        client.close()
    for server in servers:
        server.stop()


@pytest.fixture
def api_error() -> ApiError:
    """``api_error(response, status, error)``: assert that ``response`` is wamgr's JSON error
    ``error`` with ``status`` and a message; returns its body."""

    def check(response: httpx.Response, status: int, error: str) -> dict:
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert body["error"] == error, body
        assert body["message"], body
        return body

    return check


def _route_table(app: FastAPI) -> list[tuple[str, str]]:
    """``(method, path template)`` of every route ``app`` serves, as its router sees them."""
    # Newer FastAPI keeps an included router as one entry of app.routes and lists its routes
    # through iter_route_contexts; older versions copy them into app.routes.
    iterate = getattr(routing, "iter_route_contexts", None)
    routes = iterate(app.routes) if iterate is not None else app.routes
    return sorted(
        (method, route.path_format)
        for route in routes
        for method in getattr(route, "methods", None) or ()
        if method != "HEAD"
    )


@pytest.fixture
def api_routes(mgr: ConnectionManager) -> list[tuple[str, str]]:
    """``(method, path template)`` of every ``/api`` route of ``mgr``'s app."""
    return [r for r in _route_table(create_app(mgr, API_KEY)) if r[1].startswith("/api/")]
