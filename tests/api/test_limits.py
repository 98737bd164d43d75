"""Request bodies: refused without the key before they are read, and limited in size.

These tests talk raw HTTP over a socket so they see when the server answers: a server that
reads a 50 MB body before saying 401 or 413 lets the client send all of it first.
"""

from __future__ import annotations

import json
import select
import socket

import httpx
import pytest

from wamgr.api.app import create_app
from wamgr.api.server import HttpServer
from wamgr.config import DEFAULT_MAX_BODY_BYTES, Config
from wamgr.errors import ConfigError

#: The body a hostile client tries to send.
HUGE = 50 * 1024 * 1024
#: What it may have sent before the answer came: the socket buffers, not the body.
SENT_BEFORE_ANSWER_MAX = HUGE // 4
CHUNK = b"x" * 65536


def _post_until_answered(
    api: httpx.Client, path: str, headers: dict[str, str], size: int, *, chunked: bool
) -> tuple[int, dict[str, str], int]:
    """POST ``size`` bytes to ``path`` in chunks, stopping as soon as the server answers (or
    closes); returns the status, the headers and how many body bytes were sent."""
    url = api.base_url
    framing = "transfer-encoding: chunked" if chunked else f"content-length: {size}"
    head = f"POST {path} HTTP/1.1\r\nhost: {url.host}\r\ncontent-type: application/json\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + framing + "\r\n\r\n"
    with socket.create_connection((url.host, url.port), timeout=15) as sock:
        sock.sendall(head.encode())
        sent = 0
        try:
            while sent < size and not select.select([sock], [], [], 0)[0]:
                sock.sendall(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK) if chunked else CHUNK)
                sent += len(CHUNK)
            if chunked and sent >= size:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed after answering: the answer is waiting to be read
        answer = b""
        while b"\r\n\r\n" not in answer:
            data = sock.recv(65536)
            assert data, f"the server closed without an answer after {sent} bytes"
            answer += data
    status_line, *lines = answer.split(b"\r\n\r\n")[0].decode().split("\r\n")
    fields = {name.lower(): value for name, value in (line.split(": ", 1) for line in lines)}
    return int(status_line.split()[1]), fields, sent


@pytest.mark.parametrize(
    "chunked",
    [
        pytest.param(False, id="content-length"),
        pytest.param(True, id="chunked", marks=pytest.mark.slow),
    ],
)
def test_a_body_without_the_key_is_refused_before_it_is_read(mgr, serve_api, chunked) -> None:
    api = serve_api(mgr)

    status, headers, sent = _post_until_answered(
        api, "/api/tenants/t1/messages", {}, HUGE, chunked=chunked
    )

    assert status == 401
    assert sent < SENT_BEFORE_ANSWER_MAX, f"{sent} bytes were read before the 401"
    assert headers["connection"] == "close"  # the rest of the body is never read
    assert headers["www-authenticate"] == "Bearer"


@pytest.mark.slow
def test_a_body_longer_than_the_limit_is_refused_by_its_length_up_front(
    mgr, serve_api, api_key
) -> None:
    api = serve_api(mgr)

    status, headers, sent = _post_until_answered(
        api, "/api/locks/k", {"x-api-key": api_key}, HUGE, chunked=False
    )

    assert status == 413
    assert sent < SENT_BEFORE_ANSWER_MAX
    assert headers["connection"] == "close"


@pytest.mark.slow
def test_a_chunked_body_is_refused_once_it_passes_the_limit(mgr, serve_api, api_key) -> None:
    api = serve_api(mgr)

    status, headers, sent = _post_until_answered(
        api, "/api/locks/k", {"x-api-key": api_key}, HUGE, chunked=True
    )

    assert status == 413
    assert DEFAULT_MAX_BODY_BYTES <= sent < SENT_BEFORE_ANSWER_MAX
    assert headers["connection"] == "close"


@pytest.mark.slow
def test_a_chunked_body_within_the_limit_is_served(mgr, serve_api) -> None:
    api = serve_api(mgr)

    def chunks():
        yield b'{"ttl":'
        yield b" 5}"

    claimed = api.post(
        "/api/locks/k", content=chunks(), headers={"content-type": "application/json"}
    )

    assert claimed.status_code == 201, claimed.text
    assert claimed.json()["key"] == "k"


@pytest.mark.slow
def test_the_limit_is_the_managers_max_body_bytes(make_manager, serve_api, api_error) -> None:
    api = serve_api(make_manager(max_body_bytes=2048))
    padded = {"ttl": 5, "padding": "x" * 3000}

    too_big = api_error(api.post("/api/locks/k", json=padded), 413, "BodyTooLarge")
    chunked = api.post(
        "/api/locks/k",
        content=iter([json.dumps(padded).encode()]),
        headers={"content-type": "application/json"},
    )
    fits = api.post("/api/locks/k", json={"ttl": 5, "padding": "x" * 1000})

    assert "2048 bytes" in too_big["message"] and "WAMGR_MAX_BODY_BYTES" in too_big["message"]
    api_error(chunked, 413, "BodyTooLarge")
    assert fits.status_code == 201


@pytest.mark.slow
def test_an_app_may_be_given_its_own_limit(mgr, api_key) -> None:
    server = HttpServer(create_app(mgr, api_key, max_body_bytes=4), "127.0.0.1", 0).start()
    try:
        answer = httpx.post(
            f"{server.url}/api/locks/k", json={"ttl": 5}, headers={"x-api-key": api_key}
        )
    finally:
        server.stop()

    assert answer.status_code == 413


def test_max_body_bytes_is_a_setting(tmp_path) -> None:
    assert Config(home=tmp_path).max_body_bytes == DEFAULT_MAX_BODY_BYTES == 1024 * 1024
    from_env = Config.load(env={"WAMGR_MAX_BODY_BYTES": "2048", "WAMGR_HOME": str(tmp_path)})
    assert from_env.max_body_bytes == 2048

    for bad in ("0", "-1", "lots"):
        with pytest.raises(ConfigError, match="WAMGR_MAX_BODY_BYTES"):
            Config.load(env={"WAMGR_MAX_BODY_BYTES": bad, "WAMGR_HOME": str(tmp_path)})
