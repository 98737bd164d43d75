"""Outbound queue benchmark: messages per second to the simulator, and queue-to-receipt latency.

    .venv/bin/python bench/outbound.py [--messages 10000] [--tenants 100] [--threads 8]
                                       [--database-url URL] [--json]

One manager on a ``SimWhatsApp(auto_pair=True)`` with pacing off (``send_rate=None``) and
``--tenants`` connected tenants. ``--threads`` threads call ``mgr.send`` for ``--messages``
messages spread round-robin over the tenants (each message's text carries its number). The
simulator stamps each message when it receives it, so for every message:

- latency = simulator receipt − the moment ``mgr.send`` was called (p50 / p99 / max);
- throughput = messages / (last receipt − first send), and the ``mgr.send`` rate alone;
- drain: as many messages queued first for tenants no instance runs, then the tenants
  connected: messages / (first connect → last receipt), the sender's own rate.

Checked: every message reached the simulator exactly once, each tenant's in the order it was
queued, and all ended ``sent``. The database is the embedded PostgreSQL in a temporary home,
or a scratch database created on ``--database-url``'s server (needs CREATEDB) and dropped.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
from loguru import logger
from psycopg.conninfo import make_conninfo

from wamgr import Config, ConnectionManager, OutboundStatus, TenantState
from wamgr.transport.sim import SimWhatsApp
from wamgr.transport.sim_link import SimLink

TO = "15550001111"


class StampingSim(SimWhatsApp):
    """The simulator, noting when each message (by its text) arrived."""

    def __init__(self) -> None:
        super().__init__(auto_pair=True)
        self.received: dict[str, float] = {}
        self.duplicates = 0

    def _send_text(self, link: SimLink, to: str, text: str) -> str:
        message_id = super()._send_text(link, to, text)
        at = time.perf_counter()
        if text in self.received:
            self.duplicates += 1
        self.received[text] = at
        return message_id


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def _drain(
    mgr: ConnectionManager, sim: StampingSim, messages: int, tenants: int, threads: int
) -> float:
    """Queue ``messages`` for ``tenants`` new tenants that no instance runs yet, then connect
    them: seconds from the first connect to the last receipt (the sender alone)."""
    names = [f"d{i:04d}" for i in range(tenants)]
    for name in names:
        mgr.tenants_store.add(name)
    before = len(sim.received)
    with ThreadPoolExecutor(threads) as pool:
        list(
            pool.map(lambda n: mgr.send(names[n % tenants], TO, f"drain {n:06d}"), range(messages))
        )
    started = time.perf_counter()
    for name in names:
        mgr.connect(name)
    deadline = time.monotonic() + 600
    while len(sim.received) < before + messages and time.monotonic() < deadline:
        time.sleep(0.05)
    return max(sim.received.values()) - started


def run(messages: int, tenants: int, threads: int, database_url: str | None) -> dict[str, Any]:
    """One run; returns the figures and the problems found."""
    home = Path(tempfile.mkdtemp(prefix="wamgr-bench-outbound-"))
    sim = StampingSim()
    cfg = Config(
        database_url=database_url,
        home=home,
        transport=sim,
        instance_id="bench",
        send_rate=None,
        db_pool_size=max(10, threads + 4),
        claim_interval_s=3600.0,
    )
    problems: list[str] = []
    try:
        with ConnectionManager(cfg) as mgr:
            names = [f"b{i:04d}" for i in range(tenants)]
            for name in names:
                mgr.connect(name)
            for name in names:
                mgr.wait_for(name, TenantState.CONNECTED, timeout=60)

            sent_at: dict[str, float] = {}
            lock = threading.Lock()

            def send(n: int) -> None:
                text = f"msg {n:06d}"
                started = time.perf_counter()
                mgr.send(names[n % tenants], TO, text)
                with lock:
                    sent_at[text] = started

            first = time.perf_counter()
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(send, range(messages)))
            queued_s = time.perf_counter() - first
            deadline = time.monotonic() + 600
            while len(sim.received) < messages and time.monotonic() < deadline:
                time.sleep(0.05)
            last = max(sim.received.values(), default=first)
            latencies = [sim.received[t] - sent_at[t] for t in sent_at if t in sim.received]

            if len(sim.received) != messages:
                problems.append(f"{messages - len(sim.received)} messages never arrived")
            if sim.duplicates:
                problems.append(f"{sim.duplicates} messages arrived twice")
            for name in names:
                jid = mgr.status(name).jid
                got = [text for _, text, _ in sim.sent_messages(jid)]
                if got != sorted(got):
                    problems.append(f"{name}: out of order")
            drain_s = _drain(mgr, sim, messages, tenants, threads)
            left = defaultdict(int)
            for name in [*names, *(f"d{i:04d}" for i in range(tenants))]:
                for message in mgr.outbound_messages(name, limit=1000):
                    if message.status is not OutboundStatus.SENT:
                        left[str(message.status)] += 1
            if left:
                problems.append(f"not sent in the end: {dict(left)}")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return {
        "messages": messages,
        "tenants": tenants,
        "threads": threads,
        "send_calls_per_s": round(messages / queued_s, 1),
        "delivered_per_s": round(messages / (last - first), 1),
        "total_s": round(last - first, 2),
        "latency_p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "latency_p99_ms": round(_percentile(latencies, 99) * 1000, 1) if latencies else None,
        "latency_max_ms": round(max(latencies) * 1000, 1) if latencies else None,
        "drain_per_s": round(messages / drain_s, 1),
        "problems": problems,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="WARNING")

    url, scratch = args.database_url, None
    if url:
        scratch = f"wamgr_bench_outbound_{int(time.time())}"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{scratch}"')
        url = make_conninfo(url, dbname=scratch)
    try:
        result = run(args.messages, args.tenants, args.threads, url)
    finally:
        if scratch:
            with psycopg.connect(args.database_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            if key != "problems":
                print(f"{key:>20}  {value}")
        for problem in result["problems"]:
            print(f"PROBLEM: {problem}")
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
