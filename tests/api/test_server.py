"""The server: who may listen where without a key, binding at construction, a clean stop."""

from __future__ import annotations

import socket
import threading

import httpx
import pytest
from click.testing import CliRunner

from wamgr.api.app import create_app
from wamgr.api.server import HttpServer, check_binding, is_loopback
from wamgr.cli import main
from wamgr.errors import ConfigError


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


def test_a_busy_port_fails_at_construction_naming_the_way_out(mgr) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"cannot listen on 127.0.0.1:{port}.*--port"):
            HttpServer(create_app(mgr), "127.0.0.1", port)


def test_the_server_answers_once_started_and_its_thread_ends_on_stop(mgr) -> None:
    server = HttpServer(create_app(mgr), "127.0.0.1", 0, name="test-http")
    assert server.url == f"http://127.0.0.1:{server.port}" and server.port > 0

    server.start()
    try:
        answered = httpx.get(f"{server.url}/api/tenants", timeout=10)
    finally:
        server.stop(timeout=5)

    assert answered.status_code == 200
    assert "test-http" not in {t.name for t in threading.enumerate()}
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/api/tenants", timeout=2)
