"""examples/fastapi_app.py under uvicorn, driven over HTTP: wamgr starts and stops with the
app's lifespan, a route sends, inbound messages reach the app's async subscriber."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from wamgr.transport.sim_server import SimServer

from .conftest import ServerProcess

PEER = "15550001111"


@pytest.fixture
def app(example_env: dict[str, str], tmp_path: Path) -> Iterator[ServerProcess]:
    argv = [sys.executable, "-m", "uvicorn", "fastapi_app:app", "--port", "0"]
    server = ServerProcess(argv, example_env, tmp_path / "uvicorn.log", r"running on (http://\S+)")
    yield server
    server.kill()


@pytest.mark.slow
def test_the_fastapi_example_sends_receives_and_stops_cleanly(
    app: ServerProcess, sim_server: SimServer
) -> None:
    sim = sim_server.sim
    with httpx.Client(base_url=app.url, timeout=30) as client:
        connected = client.put("/tenants/shop-1")
        assert connected.status_code == 200, connected.text
        jid = connected.json()["jid"]
        assert connected.json()["state"] == "connected" and jid

        sent = client.post("/tenants/shop-1/messages", json={"to": PEER, "text": "hi"})
        assert sent.status_code == 202 and sent.json()["status"] == "queued", sent.text
        deadline = time.monotonic() + 10
        while (state := client.get(f"/tenants/shop-1/messages/{sent.json()['id']}").json())[
            "status"
        ] != "sent":
            assert time.monotonic() < deadline, f"the queued message was not sent: {state}"
            time.sleep(0.05)
        assert sim.sent_messages(jid) == [(PEER, "hi", state["whatsapp_id"])]
        unknown = client.post("/tenants/shop-2/messages", json={"to": PEER, "text": "hi"})
        assert unknown.status_code == 404 and "shop-2" in unknown.json()["detail"]

        sim.inbound(jid, PEER, "hello back")
        deadline = time.monotonic() + 10
        while not (inbox := client.get("/inbox").json()):
            assert time.monotonic() < deadline, "the inbound message never reached the app"
            time.sleep(0.05)
        assert inbox == [{"tenant": "shop-1", "from": PEER, "text": "hello back"}]

    # uvicorn shuts down gracefully, then exits by the signal it got
    assert app.terminate() in (0, -signal.SIGTERM), app.log()
    assert sim.open_sockets() == 0  # the lifespan closed the link (without logout)
    assert sim.logouts(jid) == 0
    log = app.log()
    assert "Traceback" not in log
    assert "INFO wamgr.actors.tenant [shop-1] connected as" in log
    assert "manager example stopped" in log and "Application shutdown complete" in log
