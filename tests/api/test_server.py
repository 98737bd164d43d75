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
from wamgr.config import Config
from wamgr.errors import ConfigError


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.1.2.3"])
def test_loopback_may_be_served_without_a_key(host: str) -> None:
    assert is_loopback(host)
    check_binding(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_binding_beyond_loopback_without_a_key_is_refused(host: str) -> None:
    with pytest.raises(ConfigError, match=r"refusing to listen on .* without an API key"):
        check_binding(host, None)
    check_binding(host, "a-key-of-16-chars")  # with a key it is fine


def test_an_empty_host_is_named_as_the_setting() -> None:
    with pytest.raises(ConfigError) as refused:
        check_binding("", None)

    message = refused.value.format_message()
    assert "every interface" in message and "--host" in message and "WAMGR_HTTP_HOST" in message
    assert "  " not in message


# --- the key's rules -------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_a_short_key_is_refused_beyond_loopback(host: str) -> None:
    with pytest.raises(ConfigError, match=r"^api_key is 15 characters.*at least 16"):
        check_binding(host, "k" * 15)
    check_binding(host, "k" * 16)


def test_a_short_key_is_fine_on_loopback() -> None:
    check_binding("127.0.0.1", "abc")


@pytest.mark.parametrize("key", ["abc ", " abc", "a-key-of-16-chars\n", "\tkey-of-16-characters"])
def test_a_key_with_surrounding_white_space_is_refused(tmp_path, key: str) -> None:
    env = {"WAMGR_API_KEY": key, "WAMGR_HOME": str(tmp_path)}

    with pytest.raises(ConfigError, match=r"^(api_key|WAMGR_API_KEY) .*white space") as refused:
        Config.load(env=env)

    assert "\n" not in refused.value.format_message().strip()  # one line
    assert key.strip() not in refused.value.format_message()  # the key is not shown


def test_a_key_that_is_not_printable_ascii_is_refused(tmp_path) -> None:
    for key in ("clé-de-seize-caractères", "key\x00with-a-nul-in-it"):
        with pytest.raises(ConfigError, match=r"^api_key .*printable ASCII"):
            Config(home=tmp_path, api_key=key)


def test_an_empty_key_means_none(tmp_path) -> None:
    assert Config.load(env={"WAMGR_API_KEY": "", "WAMGR_HOME": str(tmp_path)}).api_key is None


def test_serve_refuses_a_key_with_a_trailing_space(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("WAMGR_API_KEY", "abc ")
    result = CliRunner().invoke(
        main, ["--home", str(tmp_path), "serve", "--transport", "sim", "--host", "0.0.0.0"]
    )

    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("wamgr: WAMGR_API_KEY has white space")  # named as set
    assert len(result.stderr.strip().splitlines()) == 1


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


@pytest.mark.slow
def test_a_busy_port_fails_at_construction_naming_the_way_out(mgr) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"cannot listen on 127.0.0.1:{port}.*--port"):
            HttpServer(create_app(mgr), "127.0.0.1", port)


@pytest.mark.slow
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
