"""``wamgr serve`` and the instance id, and ``serve`` stopped while it starts (issue #13,
defects 1, 8 and 9): a duplicate instance id is refused with one line, SIGTERM during
start-up claims no tenant, and ``wamgr status`` does not show a dead owner's tenant as
connected."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from .conftest import Wamgr, explain, ok

#: Seconds a ``serve`` subprocess gets to reach the database, and to exit after SIGTERM.
SERVE_DEADLINE_S = 30.0
#: Seconds for the SIGTERM to reach serve's signal watcher: another process, with nothing
#: to observe but its exit.
SIGNAL_SETTLE_S = 1.0


@pytest.mark.slow
def test_serve_refuses_an_instance_id_that_a_live_process_holds(wamgr: Wamgr, make_manager) -> None:
    make_manager(instance_id="gw-1")  # the holder: this very process

    result = wamgr("serve", "--transport", "sim", "--instance-id", "gw-1", "--port", "0")

    assert result.exit_code == 11, explain(result)
    assert result.stderr.count("\n") == 1, explain(result)
    assert result.stderr.startswith(
        f"wamgr: instance id 'gw-1' is in use by another live process (pid {os.getpid()} on "
        f"host {socket.gethostname()}, since "
    )
    assert "serving" not in result.output


def _rows(database_url: str, table: str) -> list[tuple]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return conn.execute(f"SELECT * FROM {table}").fetchall()  # type: ignore[arg-type]


@pytest.mark.slow
def test_sigterm_during_start_up_stops_serve_before_it_claims_a_tenant(
    wamgr: Wamgr, database_url: str, db_proxy, tmp_path: Path
) -> None:
    ok(wamgr("tenants", "add", "t1", "t2"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAMGR_")}
    env.update(WAMGR_CLAIM_INTERVAL="0.2", WAMGR_HOME=str(tmp_path / "home"))
    log_path = tmp_path / "serve.log"
    argv = [sys.executable, "-m", "wamgr.cli", "--database-url", db_proxy.database_url]
    argv += ["serve", "--transport", "sim", "--instance-id", "early", "--port", "0"]
    db_proxy.freeze()  # start-up stalls at the database, with the signal handlers in place
    with log_path.open("w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + SERVE_DEADLINE_S
        while db_proxy.connections == 0:
            assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        time.sleep(SIGNAL_SETTLE_S)
        db_proxy.thaw()  # start-up goes on ... and must give up at its next step

        code = proc.wait(SERVE_DEADLINE_S)
    finally:
        db_proxy.thaw()
        if proc.poll() is None:
            proc.kill()
            proc.wait(SERVE_DEADLINE_S)
    output = log_path.read_text()

    assert code == 0, output
    assert "wamgr serving" not in output
    assert "wamgr: stopped during start-up" in output
    assert "Traceback" not in output
    assert _rows(database_url, "wamgr_status_history") == []  # no tenant was ever connecting
    assert _rows(database_url, "wamgr_leases") == []
    assert _rows(database_url, "wamgr_instances") == []  # the id was given back


def test_status_does_not_show_a_dead_owners_tenant_as_connected(
    wamgr: Wamgr, database_url: str
) -> None:
    ok(wamgr("tenants", "add", "shop-1"))
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(  # what a serve killed while the database was down leaves behind
            "UPDATE wamgr_tenants SET state = 'connected', owner = 'gw-dead'"
            " WHERE tenant_id = 'shop-1'"
        )
        conn.execute(
            "INSERT INTO wamgr_leases (tenant_id, owner, token, expires_at)"
            " VALUES ('shop-1', 'gw-dead', 1, now() - interval '1 minute')"
        )

    (status,) = json.loads(ok(wamgr("status", "--json")))
    table = ok(wamgr("status"))

    assert status["state"] == "standby"
    assert status["owner"] is None
    assert status["last_error"].startswith(
        "stale status: gw-dead showed connected but its lease expired at "
    )
    header, row = table.splitlines()[:2]
    assert header.split()[:3] == ["TENANT", "DESIRED", "STATE"]
    assert row.split()[:3] == ["shop-1", "connected", "standby"]
