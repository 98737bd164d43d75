"""examples/django_app under ``runserver``, driven over HTTP: wamgr starts in
AppConfig.ready, views send and show inbound messages, SIGTERM stops it cleanly."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from wamgr.transport.sim_server import SimServer

from .conftest import EXAMPLES, ServerProcess

PEER = "15550001111"


def free_port() -> int:
    """A port nothing listens on now (runserver cannot report the one it took)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def site(example_env: dict[str, str], tmp_path: Path) -> Iterator[ServerProcess]:
    manage = str(EXAMPLES / "django_app" / "manage.py")
    argv = [sys.executable, manage, "runserver", "--noreload", f"127.0.0.1:{free_port()}"]
    server = ServerProcess(
        argv, example_env, tmp_path / "django.log", r"development server at (http://\S+?)/?\n"
    )
    yield server
    server.kill()


@pytest.mark.slow
def test_the_django_example_sends_receives_and_stops_cleanly(
    site: ServerProcess, sim_server: SimServer
) -> None:
    sim = sim_server.sim
    with httpx.Client(base_url=site.url, timeout=30) as client:
        connected = client.put("/tenants/shop-1")
        assert connected.status_code == 200, connected.text
        jid = connected.json()["jid"]
        assert connected.json()["state"] == "connected" and jid

        sent = client.post("/tenants/shop-1/messages", json={"to": PEER, "text": "hi"})
        assert sent.status_code == 201, sent.text
        assert sim.sent_messages(jid) == [(PEER, "hi", sent.json()["id"])]
        unknown = client.post("/tenants/shop-2/messages", json={"to": PEER, "text": "hi"})
        assert unknown.status_code == 404

        sim.inbound(jid, PEER, "hello back")
        deadline = time.monotonic() + 10
        while not (inbox := client.get("/inbox").json()):
            assert time.monotonic() < deadline, "the inbound message never reached the site"
            time.sleep(0.05)
        assert inbox == [{"tenant": "shop-1", "from": PEER, "text": "hello back"}]

    assert site.terminate() == 0, site.log()
    assert sim.open_sockets() == 0  # stopped at exit: link closed without logout
    assert sim.logouts(jid) == 0
    log = site.log()
    assert "Traceback" not in log
    assert "INFO wamgr.actors.tenant [shop-1] connected as" in log
    assert "manager example stopped" in log
