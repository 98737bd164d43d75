"""Over HTTP, the instance that does not hold a tenant answers for it: a send, the QR in each
format, a pair code and clear-auth are carried out by the holder (two managers on one
database; and, slow, two `wamgr serve` processes sharing a simulator)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from wamgr import TenantState
from wamgr.transport.sim import SimWhatsApp
from wamgr.transport.sim_server import SimServer

CONNECTED = TenantState.CONNECTED
PAIRING = TenantState.PAIRING
#: Seconds a serve process gets to start, and to exit after SIGTERM.
DEADLINE_S = 60.0  # two serve processes starting on a loaded CI host


def test_send_qr_pair_code_and_clear_auth_over_http_through_the_non_holder(
    make_manager, serve_api, clock, api_error
) -> None:
    sim = SimWhatsApp(auto_pair=False, clock=clock)
    owner, other = make_manager(transport=sim), make_manager(transport=sim)
    api = serve_api(other)
    owner.connect("t1")
    owner.wait_for("t1", PAIRING, timeout=5)

    png = api.get("/api/tenants/t1/qr", params={"format": "png"})
    text = api.get("/api/tenants/t1/qr", params={"format": "text"})
    code = api.post("/api/tenants/t1/pair-code", json={"phone": "+1 555 000 3333"})

    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    assert text.status_code == 200 and "█" in text.text
    assert code.status_code == 200
    jid = sim.enter_code(code.json()["code"])
    owner.wait_for("t1", CONNECTED, timeout=5)

    sent = api.post(
        "/api/tenants/t1/messages", json={"to": "15550001111", "text": "hi", "queue": False}
    )

    assert sent.status_code == 202, sent.text
    assert sim.sent_messages(jid) == [("15550001111", "hi", sent.json()["message_id"])]
    body = api_error(api.get("/api/tenants/t1/qr"), 409, "NotPairing")
    assert body["state"] == "connected"

    cleared = api.post("/api/tenants/t1/clear-auth")

    assert cleared.status_code == 200 and cleared.json()["state"] == "logged_out"
    body = api_error(
        api.post(
            "/api/tenants/t1/messages", json={"to": "15550001111", "text": "x", "queue": False}
        ),
        409,
        "NotConnected",
    )
    assert body["state"] == "logged_out"
    assert other.local_statuses() == []


@pytest.mark.slow
def test_a_send_to_a_tenant_the_holder_cannot_send_with_names_the_holder(
    make_manager, serve_api, sim, api_error
) -> None:
    owner, other = make_manager(), make_manager()
    owner.connect("t1")
    jid = owner.wait_for("t1", CONNECTED, timeout=5).jid
    sim.hold_dials()
    sim.drop(jid, "network")
    owner.wait_for("t1", TenantState.BACKOFF, timeout=5)
    api = serve_api(other)

    body = api_error(
        api.post(
            "/api/tenants/t1/messages", json={"to": "15550001111", "text": "x", "queue": False}
        ),
        409,
        "NotConnected",
    )

    assert body["owner"] == "inst-0" and body["state"] == "backoff"
    assert "instance 'inst-0'" in body["message"]


@pytest.mark.slow
def test_a_holder_that_does_not_answer_is_a_504_naming_it(make_manager, serve_api, api_error):
    owner, other = make_manager(), make_manager(call_timeout_s=0.5)
    owner.connect("t1")
    owner.wait_for("t1", CONNECTED, timeout=5)
    owner.runtime.listener.stop(5)  # alive and holding the lease, but deaf
    api = serve_api(other)

    body = api_error(api.get("/api/tenants/t1/qr"), 504, "HolderNotAnswering")

    assert body["holder"] == "inst-0" and body["tenant_id"] == "t1"
    assert "instance 'inst-0'" in body["message"]


# --- two `wamgr serve` processes ----------------------------------------------------------


def _serve(database_url: str, sim_url: str, instance_id: str, tmp_path: Path, api_key: str):
    """Start `wamgr serve` on a free port; returns the process and its log file."""
    log_path = tmp_path / f"{instance_id}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAMGR_")}
    env.update(WAMGR_HOME=str(tmp_path / instance_id), WAMGR_API_KEY=api_key, PYTHONUNBUFFERED="1")
    argv = [sys.executable, "-m", "wamgr.cli", "--database-url", database_url, "serve"]
    argv += ["--transport", sim_url, "--instance-id", instance_id, "--port", "0"]
    with log_path.open("w") as log:
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    return proc, log_path


def _url_of(proc: subprocess.Popen, log_path: Path) -> str:
    deadline = time.monotonic() + DEADLINE_S
    while not (found := re.search(r"HTTP API on (http://\S+);", log_path.read_text())):
        assert proc.poll() is None, log_path.read_text()
        assert time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.05)
    return found.group(1)


def _until(predicate, what: str, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.slow
def test_two_serve_processes_send_qr_and_pair_code_through_the_non_holder(
    database_url, tmp_path, api_key
) -> None:
    sim = SimWhatsApp(auto_pair=False)
    server = SimServer(sim).start()
    procs = []
    try:
        for name in ("web-a", "web-b"):
            procs.append(_serve(database_url, server.url, name, tmp_path, api_key))
        urls = [_url_of(proc, log) for proc, log in procs]
        auth = {"authorization": f"Bearer {api_key}"}
        with (
            httpx.Client(base_url=urls[0], headers=auth, timeout=15) as a,
            httpx.Client(base_url=urls[1], headers=auth, timeout=15) as b,
        ):
            assert a.put("/api/tenants/shop-1").status_code == 201
            _until(lambda: sim.pending_pairings(), "the holder to show a QR")
            assert a.get("/api/tenants/shop-1").json()["owner"] == "web-a"

            qr = {f: b.get("/api/tenants/shop-1/qr", params={"format": f}) for f in ("png", "svg")}
            code = b.post("/api/tenants/shop-1/pair-code", json={"phone": "15550004444"})

            assert qr["png"].status_code == 200 and qr["png"].content.startswith(b"\x89PNG")
            assert qr["svg"].status_code == 200 and "<svg" in qr["svg"].text
            assert code.status_code == 200, code.text
            jid = sim.enter_code(code.json()["code"])
            _until(lambda: a.get("/api/tenants/shop-1").json()["state"] == "connected", "pairing")

            sent = b.post(
                "/api/tenants/shop-1/messages",
                json={"to": "15550001111", "text": "yo", "queue": False},
            )

            assert sent.status_code == 202, sent.text
            assert sim.sent_messages(jid) == [("15550001111", "yo", sent.json()["message_id"])]
            assert b.get("/api/tenants/shop-1").json()["owner"] == "web-a"
        for proc, _ in procs:
            proc.send_signal(signal.SIGTERM)
        for proc, log in procs:
            assert proc.wait(timeout=DEADLINE_S) == 0, log.read_text()
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        server.stop()
    for _, log in procs:
        assert "Traceback" not in log.read_text()
    assert sim.max_concurrent_sockets() == 1
