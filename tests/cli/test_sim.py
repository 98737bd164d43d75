"""``wamgr sim`` as a real process (it serves until a signal), and ``wamgr sim-stats``."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from wamgr.cli import main
from wamgr.cli.sim import SIM_STOP_BUDGET_S
from wamgr.transport.sim import SimWhatsApp
from wamgr.transport.sim_server import SimServer, fetch_stats

from .conftest import explain, ok

#: Seconds the ``sim`` process gets to start listening.
START_S = 20.0
#: Seconds between two looks at its output (another process: no event to wait on).
POLL_S = 0.05


@pytest.fixture
def simulator() -> Iterator[SimServer]:
    server = SimServer(SimWhatsApp()).start()
    yield server
    server.stop()


def _sim_stats(*args: str) -> Result:
    return CliRunner().invoke(main, ["sim-stats", *args], prog_name="wamgr")


def test_sim_stats_prints_what_the_simulator_saw(simulator: SimServer) -> None:
    port = str(simulator.port)

    assert ok(_sim_stats("--port", port)).splitlines() == [
        "max_concurrent_sockets: 0",
        "accounts: 0",
        "open_sockets: 0",
    ]
    assert json.loads(ok(_sim_stats("--port", port, "--json"))) == simulator.sim.stats()


@pytest.mark.slow
def test_sim_stats_without_a_simulator_exits_1_naming_the_address(
    simulator: SimServer,
) -> None:
    port = simulator.port
    simulator.stop()  # nothing listens on this port any more

    result = _sim_stats("--port", str(port))

    assert result.exit_code == 1, explain(result)
    assert f"no simulator at 127.0.0.1:{port}" in result.stderr


@pytest.mark.slow
def test_sim_serves_until_sigterm(tmp_path: Path) -> None:
    log_path = tmp_path / "sim.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAMGR_")}
    env["PYTHONUNBUFFERED"] = "1"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wamgr.cli", "sim", "--port", "0"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + START_S
        while not (found := re.search(r"on sim://127\.0\.0\.1:(\d+)", log_path.read_text())):
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(POLL_S)
        assert fetch_stats("127.0.0.1", int(found.group(1)))["open_sockets"] == 0

        proc.send_signal(signal.SIGTERM)

        assert proc.wait(timeout=SIM_STOP_BUDGET_S) == 0, log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in log_path.read_text()
