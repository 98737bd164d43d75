"""Fixtures for the examples: the simulator served over TCP (so the test drives the
WhatsApp side while the example runs in its own process), and running an example as a
server process until the test ends."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wamgr.transport.sim import SimWhatsApp
from wamgr.transport.sim_server import SimServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
#: Seconds an example gets to start serving, and to exit after SIGTERM.
START_S = 60.0


@pytest.fixture
def sim_server() -> Iterator[SimServer]:
    """A simulated WhatsApp (pairing new devices at once) on a TCP port."""
    server = SimServer(SimWhatsApp(auto_pair=True)).start()
    yield server
    server.stop()


class ServerProcess:
    """An example started as a process; its output goes to ``log_path``."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path, ready: str):
        self.log_path = log_path
        with log_path.open("w") as log:
            self.proc = subprocess.Popen(
                argv, env=env, cwd=EXAMPLES, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_S
        while not (found := re.search(ready, self.log())):
            assert self.proc.poll() is None, self.log()
            assert time.monotonic() < deadline, self.log()
            time.sleep(0.05)
        self.url = found.group(1)

    def log(self) -> str:
        """What the process has written so far."""
        return self.log_path.read_text()

    def terminate(self) -> int:
        """SIGTERM, as a process manager stops it; its exit code."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=START_S)

    def kill(self) -> None:
        """Make sure it is gone."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def example_env(database_url: str, sim_server: SimServer, tmp_path: Path) -> dict[str, str]:
    """The environment an example runs in: the test's database and simulator."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAMGR_")}
    env.update(
        WAMGR_DATABASE_URL=database_url,
        WAMGR_TRANSPORT=sim_server.url,
        WAMGR_HOME=str(tmp_path / "home"),
        WAMGR_INSTANCE_ID="example",
        PYTHONUNBUFFERED="1",
    )
    return env
