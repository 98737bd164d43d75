"""Fixtures of the API tests: the HTTP API of a manager on loopback, driven over real HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from wamgr import ConnectionManager
from wamgr.api.http import HttpServer, create_app

API_KEY = "test-key-0123456789"

Serve = Callable[..., httpx.Client]


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
        client = httpx.Client(base_url=server.url, headers=headers, timeout=15.0)
        clients.append(client)
        return client

    yield serve
    for client in clients:
        client.close()
    for server in servers:
        server.stop()
