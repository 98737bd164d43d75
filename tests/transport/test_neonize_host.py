"""host.py: the neonize host process (what it loads, what it refuses, what ``stats`` says).

Its life with a parent (placement, retirement, crashes, the gate watchdog) is tested through
NeonizeTransport in test_neonize_transport.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from wamgr.transport.base import LinkEvent, Qr
from wamgr.transport.neonize.host import host_stats

#: Layers above the transport: a host process must load none of them.
ABOVE_TRANSPORT = ("wamgr.manager", "wamgr.config", "wamgr.actors", "wamgr.api", "wamgr.cli")

_LOADED = """
import json, sys
import wamgr.transport.neonize.host
# what host.main() imports before it serves
import wamgr.logging, wamgr.transport.link_server, wamgr.transport.neonize.local
print("MODULES " + json.dumps(sorted(m for m in sys.modules if m.startswith("wamgr"))))
"""


@pytest.mark.slow
def test_a_host_process_loads_neither_the_manager_nor_the_config():
    done = subprocess.run(
        [sys.executable, "-c", _LOADED],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "NEONIZE_BOT_TAG": "off"},
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("MODULES "))
    loaded = json.loads(line.removeprefix("MODULES "))
    assert "wamgr.transport.neonize.local" in loaded
    above = [m for m in loaded if m.startswith(ABOVE_TRANSPORT)]
    assert above == [], f"a neonize host loads layers above the transport: {above}"


@pytest.mark.slow
def test_a_host_refuses_a_store_that_is_not_postgres():
    env = {k: v for k, v in os.environ.items() if k != "WAMGR_NEONIZE_STORE_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "wamgr.transport.neonize.host", "--fd", "0", "--name", "h-test"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "WAMGR_NEONIZE_STORE_URL": "/tmp/whatsmeow.db"},  # an SQLite file to Go
    )
    assert done.returncode == 2
    assert "h-test: WAMGR_NEONIZE_STORE_URL must be a postgres:// URL" in done.stderr


def test_stats_count_the_links_threads_and_memory_of_the_process(fake_neonize):
    shown = threading.Event()

    def on_event(event: LinkEvent) -> None:
        if isinstance(event, Qr):
            shown.set()

    link = fake_neonize.transport.create_link("t1", None, 1, on_event)
    link.open()
    assert shown.wait(5)
    stats = host_stats(fake_neonize.transport)
    assert stats["open_links"] == 1 and stats["connects"] == 1
    assert stats["dial_failures"] == 0 and stats["abandoned"] == 0
    assert stats["gate_exclusive"] >= 1  # the link's start hold
    assert stats["threads"] >= 3 and stats["rss_kb"] > 0
    assert stats["pid"] == os.getpid()
