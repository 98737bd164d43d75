"""The live stream over HTTP: a status written by any instance reaches an open stream as a
``status`` event with the tenant's row and the counts; "anything may have changed" is a
``reload``; a stream needs a session."""

from __future__ import annotations

import json
import queue
import threading

import httpx
import pytest

from wamgr.api.app import create_app
from wamgr.api.server import HttpServer
from wamgr.status import Desired, TenantState, TenantStatus
from wamgr.store.tenants import TenantStore

from .conftest import API_KEY

WAIT_S = 5.0

Events = queue.SimpleQueue[tuple[str, dict]]


def _read(client: httpx.Client, out: Events, registered: threading.Event) -> None:
    """Put the stream's events in ``out`` as ``(name, data)`` until the client is closed;
    ``registered`` is set at the stream's first line (it is then among the hub's)."""
    try:
        with client.stream("GET", "/dashboard/events", timeout=None) as stream:
            name = None
            for line in stream.iter_lines():
                registered.set()
                if line.startswith("event: "):
                    name = line.removeprefix("event: ")
                elif line.startswith("data: ") and name is not None:
                    out.put((name, json.loads(line.removeprefix("data: "))))
                    name = None
    except httpx.HTTPError:
        pass  # the client was closed at the end of the test


def _open(client: httpx.Client) -> Events:
    events: Events = queue.SimpleQueue()
    registered = threading.Event()
    threading.Thread(target=_read, args=(client, events, registered), daemon=True).start()
    assert registered.wait(WAIT_S), "the stream did not open"
    return events


def _next(events: Events, name: str) -> dict:
    while True:
        got, data = events.get(timeout=WAIT_S)
        if got == name:
            return data


@pytest.mark.slow
def test_a_write_by_another_instance_reaches_the_open_stream(signed_in, mgr) -> None:
    assert mgr.runtime.status_feed.wait_listening(WAIT_S)
    events = _open(signed_in)
    other = TenantStore(mgr.runtime.db)  # as another instance would write it
    other.set_desired("far-1", Desired.CONNECTED)
    status = TenantStatus("far-1", TenantState.BACKOFF, owner="inst-9", attempt=2)
    assert other.write_statuses([(status, "connected")], "inst-9") == 1

    data = _next(events, "status")
    (row,) = data["tenants"]
    assert (row["tenant_id"], row["state"], row["owner"], row["attempt"]) == (
        "far-1",
        "backoff",
        "inst-9",
        2,
    )
    assert data["counts"] == {"backoff": 1}


@pytest.mark.slow
def test_a_feed_that_lost_its_connection_tells_the_page_to_reload(signed_in, mgr) -> None:
    assert mgr.runtime.status_feed.wait_listening(WAIT_S)
    events = _open(signed_in)
    with mgr.runtime.db.connection() as conn:  # notifications may be missed meanwhile
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query = 'LISTEN wamgr_status'"
        )
    assert _next(events, "reload") == {}


@pytest.mark.slow
def test_a_stream_needs_a_session(client) -> None:
    assert client.get("/dashboard/events").status_code == 401
    assert client.get("/dashboard/ping").status_code == 401


def test_closing_the_hub_ends_every_open_stream(mgr) -> None:
    app = create_app(mgr, API_KEY)
    server = HttpServer(app, "127.0.0.1", 0, name="test-dashboard").start()
    try:
        with httpx.Client(base_url=server.url, headers={"origin": server.url}) as http:
            http.post("/dashboard/login", data={"key": API_KEY})
            ended = threading.Event()

            def read() -> None:
                with http.stream("GET", "/dashboard/events", timeout=WAIT_S * 2) as stream:
                    for _ in stream.iter_lines():
                        registered.set()
                ended.set()

            registered = threading.Event()
            threading.Thread(target=read, daemon=True).start()
            assert registered.wait(WAIT_S)
            assert app.state.dashboard.live.streams == 1

            app.state.dashboard.live.close()
            assert ended.wait(WAIT_S), "the stream did not end"
            assert app.state.dashboard.live.streams == 0
    finally:
        server.stop()
