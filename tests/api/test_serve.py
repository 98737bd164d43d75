"""``wamgr serve`` as a real process: the HTTP API is up with it and stops with it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest

#: Seconds the process gets to serve, and to exit after SIGTERM.
DEADLINE_S = 20.0


@pytest.mark.slow
def test_serve_runs_the_api_and_stops_it_on_sigterm(database_url, tmp_path, api_key) -> None:
    log_path = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAMGR_")}
    env.update(WAMGR_HOME=str(tmp_path / "home"), WAMGR_API_KEY=api_key, PYTHONUNBUFFERED="1")
    argv = [sys.executable, "-m", "wamgr.cli", "--database-url", database_url]
    argv += ["serve", "--transport", "sim", "--instance-id", "web", "--port", "0"]
    with log_path.open("w") as log:
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not (found := re.search(r"HTTP API on (http://\S+);", log_path.read_text())):
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
        url = found.group(1)

        with httpx.Client(base_url=url, headers={"authorization": f"Bearer {api_key}"}) as api:
            assert api.put("/api/tenants/shop-1").status_code == 201
            health = api.get("/api/status").json()
            assert health["instance_id"] == "web" and health["database"] == "ok"
            assert httpx.get(f"{url}/api/status").status_code == 401

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=DEADLINE_S) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = log_path.read_text()
    assert "Traceback" not in log
    assert "no API key" not in log  # a key was given
    assert "wamgr stopping" in log
