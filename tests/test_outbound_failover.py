"""The outbound queue survives the death of the instance that sends it (real processes).

Two ``wamgr serve`` processes share one PostgreSQL and one simulator (served from this test
process, so the test counts what reached it). The holder of the tenant is SIGKILLed while
paced messages are still queued: the other instance takes the tenant over and sends the
rest, each exactly once. A message the holder was sending at the moment it died ends
``unknown`` and is not sent again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from wamgr.store.db import Database
from wamgr.store.outbound import OutboundStatus, OutboundStore
from wamgr.store.tenants import TenantStore
from wamgr.transport.sim import SimWhatsApp
from wamgr.transport.sim_server import SimServer

pytestmark = pytest.mark.slow

MESSAGES = 20
TO = "15550001111"


def _until(predicate, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def _owner(database_url: str) -> tuple[str, str | None] | None:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT state, owner FROM wamgr_tenants WHERE tenant_id = 't1'"
        ).fetchone()


def test_the_successor_sends_what_a_killed_holder_left_each_message_once(
    database_url: str, tmp_path: Path
) -> None:
    sim = SimWhatsApp(auto_pair=True)
    server = SimServer(sim).start()
    db = Database(database_url, min_size=1, max_size=4)
    db.open()
    procs: dict[str, subprocess.Popen] = {}
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("WAMGR_")},
        "WAMGR_DATABASE_URL": database_url,
        "WAMGR_HOME": str(tmp_path / "home"),
        "WAMGR_LEASE_TTL": "3",
        "WAMGR_RENEW_INTERVAL": "0.5",
        "WAMGR_RENEW_DEADLINE": "2",
        "WAMGR_CLAIM_INTERVAL": "0.3",
        "WAMGR_SEND_RATE": "120",  # one every 0.5 s: most are still queued at the kill
        "WAMGR_SEND_BURST": "1",
    }

    def serve(name: str) -> None:
        with (tmp_path / f"{name}.log").open("wb") as log:
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", "wamgr.cli", "serve", "--transport", server.url,
                 "--instance-id", name, "--port", "0"],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    try:
        TenantStore(db).add("t1")
        serve("a")
        _until(lambda: _owner(database_url) == ("connected", "a"), 30, "a to connect t1")
        serve("b")
        _until(lambda: b"serving" in (tmp_path / "b.log").read_bytes(), 30, "b to serve")
        (jid,) = sim.accounts()

        store = OutboundStore(db)
        ids = [
            store.add(str(uuid.uuid4()), "t1", {"to": TO, "text": f"m{i:02d}"},
                      now=time.time(), expires_in_s=3600)[0].message_id
            for i in range(MESSAGES)
        ]  # fmt: skip
        _until(lambda: len(sim.sent_messages(jid)) >= 3, 30, "a to send a few")
        procs["a"].send_signal(signal.SIGKILL)
        procs["a"].wait(10)
        sent_by_a = len(sim.sent_messages(jid))
        assert sent_by_a < MESSAGES  # some were left for the successor

        def settled() -> bool:
            states = {store.get("t1", i).status for i in ids}
            return states <= {OutboundStatus.SENT, OutboundStatus.UNKNOWN}

        _until(settled, 60, "b to send the rest")
        assert _owner(database_url) == ("connected", "b")

        messages = [store.get("t1", i) for i in ids]
        texts = [text for _, text, _ in sim.sent_messages(jid)]
        counts = Counter(texts)
        assert max(counts.values()) == 1, counts  # nothing reached WhatsApp twice
        unknown = [m for m in messages if m.status is OutboundStatus.UNKNOWN]
        assert len(unknown) <= 1  # at most the one a was sending when it died
        for message in messages:
            if message.status is OutboundStatus.SENT:
                assert counts[message.text] == 1
        assert len(texts) in (MESSAGES - len(unknown), MESSAGES)
        # what b sent, it sent in order
        b_texts = texts[sent_by_a:]
        assert b_texts == sorted(b_texts)
        assert sim.max_concurrent_sockets(jid) == 1
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        db.close()
        server.stop()
