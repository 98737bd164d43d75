"""Forwarded-call latency: a send asked of the instance that holds the tenant, and of one
that does not (the call travels through PostgreSQL to the holder and its reply back).

    .venv/bin/python bench/forward.py [--calls 2000] [--tenants 10] [--threads 1,8] [--json]
                                      [--database-url URL]

Two managers on one database and one in-process simulator (``auto_pair``), on one host:
``holder`` connects ``--tenants`` tenants; ``other`` holds none. For each thread count, the
same ``--calls`` ``send_text`` calls on random tenants are made through ``holder`` (local:
an actor ask) and through ``other`` (forwarded: a call row and NOTIFY to the holder, its
command listener and a call runner, the tenant's actor, a reply row and NOTIFY back, the
asker's reply listener, one DELETE to collect it). Printed: p50 / p99 / mean per path in
milliseconds, the forwarded minus local difference at p50 (issue 9 asks at most +20 ms),
calls per second, and sanity checks (every message seen by the simulator, from the right
account; no call row left). The exit status is 1 if a check failed.

The database is the embedded PostgreSQL in a temporary home, or with ``--database-url`` a
scratch database created on that server and dropped afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
from loguru import logger
from psycopg.conninfo import make_conninfo

from wamgr import Config, ConnectionManager, TenantState
from wamgr.store import embedded
from wamgr.transport.sim import SimWhatsApp

#: Calls made on each path before measuring (connections, caches, JIT of the hot paths).
WARMUP_CALLS = 50


@contextlib.contextmanager
def bench_database(database_url: str | None) -> Iterator[str]:
    """A database for the run: embedded in a temporary home, or a scratch database on
    ``database_url``'s server (dropped afterwards)."""
    if database_url is None:
        home = Path(tempfile.mkdtemp(prefix="wamgr-bench-forward-"))
        try:
            yield embedded.acquire(home)
        finally:
            embedded.release(home)
            shutil.rmtree(home, ignore_errors=True)
        return
    name = f"wamgr_bench_forward_{os.getpid()}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_conninfo(database_url, dbname=name)
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def measure(
    call: Callable[[str], object], tenants: list[str], calls: int, threads: int
) -> dict[str, float]:
    """Run ``calls`` calls of ``call(tenant)`` on random tenants from ``threads`` threads;
    p50 / p99 / mean latency in ms and calls per second."""
    for _ in range(WARMUP_CALLS):
        call(random.choice(tenants))
    latencies: list[float] = []
    lock = threading.Lock()
    per_thread = [calls // threads + (1 if n < calls % threads else 0) for n in range(threads)]

    def work(count: int) -> None:
        mine = []
        for _ in range(count):
            tenant = random.choice(tenants)
            started = time.perf_counter()
            call(tenant)
            mine.append((time.perf_counter() - started) * 1000)
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=work, args=(n,), name=f"bench-{i}") for i, n in
               enumerate(per_thread)]  # fmt: skip
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "mean_ms": statistics.fmean(latencies),
        "calls_per_s": len(latencies) / elapsed,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the two managers, measure both paths at each thread count, check the sim."""
    sim = SimWhatsApp(auto_pair=True)
    results: dict[str, Any] = {"calls": args.calls, "tenants": args.tenants, "rows": []}
    problems: list[str] = []
    with bench_database(args.database_url) as url, tempfile.TemporaryDirectory() as home:

        def config(instance_id: str) -> Config:
            return Config(
                database_url=url, home=Path(home), transport=sim, instance_id=instance_id,
                claim_interval_s=3600.0, call_timeout_s=10.0,
            )  # fmt: skip

        with (
            ConnectionManager(config("holder")) as holder,
            ConnectionManager(config("other")) as other,
        ):
            tenants = [f"bench-{n}" for n in range(args.tenants)]
            for tenant in tenants:
                holder.connect(tenant)
            jids = {t: holder.wait_for(t, TenantState.CONNECTED, timeout=30).jid for t in tenants}
            for threads in args.threads:
                for path, mgr in (("local", holder), ("forwarded", other)):
                    row = measure(
                        lambda t, m=mgr: m.send_text(t, "15550001111", "bench"),
                        tenants, args.calls, threads,
                    )  # fmt: skip
                    results["rows"].append({"path": path, "threads": threads, **row})
            sent = sum(len(sim.sent_messages(jid)) for jid in jids.values())
            expected = 2 * len(args.threads) * (args.calls + WARMUP_CALLS)
            if sent != expected:
                problems.append(f"the simulator saw {sent} messages, expected {expected}")
            if other.local_statuses():
                problems.append("the non-holder opened tenants of its own")
            with other.runtime.db.connection() as conn:
                left = conn.execute("SELECT count(*) FROM wamgr_calls").fetchone()[0]
            if left:
                problems.append(f"{left} call rows left")
    results["problems"] = problems
    return results


def report(results: dict[str, Any]) -> None:
    """The table, the p50 difference per thread count, and the problems."""
    print(f"send_text, {results['calls']} calls on {results['tenants']} tenants per row")
    print(f"{'path':<10} {'threads':>7} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'calls/s':>9}")
    by_key = {(r["path"], r["threads"]): r for r in results["rows"]}
    for row in results["rows"]:
        print(
            f"{row['path']:<10} {row['threads']:>7} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} "
            f"{row['mean_ms']:>8.2f} {row['calls_per_s']:>9,.0f}"
        )
    for threads in sorted({r["threads"] for r in results["rows"]}):
        extra = by_key["forwarded", threads]["p50_ms"] - by_key["local", threads]["p50_ms"]
        print(f"forwarded - local at p50, {threads} thread(s): {extra:+.2f} ms (limit +20 ms)")
    for problem in results["problems"]:
        print(f"PROBLEM: {problem}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per path and row")
    parser.add_argument("--tenants", type=int, default=10, help="tenants the holder connects")
    parser.add_argument(
        "--threads",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1, 8],
        help="comma-separated thread counts (default 1,8)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server to use (a scratch database is created on it); "
        "default: the embedded PostgreSQL in a temporary home",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    results = run(args)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        report(results)
    return 1 if results["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
