"""Failover time between two `wamgr serve` processes, with the default lease settings.

For each run: a `wamgr sim`, two `wamgr serve` instances on one PostgreSQL, one tenant. The
instance that holds the tenant is stopped (SIGKILL, or SIGTERM), and the time until the other
one has it connected is measured (from the simulator's socket log and the tenant's row).
Prints min / median / max per signal.

    .venv/bin/python bench/failover.py --runs 3                # embedded PostgreSQL
    .venv/bin/python bench/failover.py --database-url URL --runs 5 --json

Expect SIGKILL ≈ lease_ttl (30 s) + up to one claim_interval (5 s): nobody can know the
holder died until its lease expires. SIGTERM hands over at the next claim pass (≤ 5 s).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from wamgr.store import embedded
from wamgr.transport.sim_server import fetch_stats


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _until(predicate, timeout: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.05)
    raise SystemExit(f"timed out after {timeout:g} s waiting for {what}")


def _row(url: str) -> tuple[str, str | None] | None:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT state, owner FROM wamgr_tenants WHERE tenant_id = 'bench'"
        ).fetchone()


def one_run(server_url: str, signum: int, run: int, logs: Path) -> float:
    """Seconds from sending ``signum`` to the holder until the other instance is connected."""
    dbname = f"wamgr_failover_{os.getpid()}_{run}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    url = make_conninfo(server_url, dbname=dbname)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAMGR_")}
    env["WAMGR_DATABASE_URL"] = url
    procs: dict[str, subprocess.Popen] = {}

    def spawn(name: str, *args: str) -> None:
        with open(logs / f"{name}-{run}.log", "wb") as log:
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", "wamgr.cli", *args], env=env, stdout=log, stderr=log
            )

    try:
        spawn("sim", "sim", "--port", str(port))
        _until(lambda: _reachable(port), 10, "the simulator")
        spawn(
            "a",
            "serve",
            "--transport",
            f"sim://127.0.0.1:{port}",
            "--instance-id",
            "a",
            "--port",
            "0",
        )
        subprocess.run(
            [sys.executable, "-m", "wamgr.cli", "tenants", "add", "bench"],
            env=env,
            check=True,
            capture_output=True,
        )
        _until(lambda: _row(url) == ("connected", "a"), 30, "a to connect the tenant")
        spawn(
            "b",
            "serve",
            "--transport",
            f"sim://127.0.0.1:{port}",
            "--instance-id",
            "b",
            "--port",
            "0",
        )
        time.sleep(2.0)  # b is up and polling
        stopped_at = time.monotonic()
        procs["a"].send_signal(signum)
        took = _until(lambda: _row(url) == ("connected", "b"), 120, "b to take over")
        stats = fetch_stats("127.0.0.1", port)
        if stats["max_concurrent_sockets"] != 1:
            raise SystemExit(f"two sockets at once: {stats}")
        return took if took else time.monotonic() - stopped_at
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


def _reachable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per signal (default 3)")
    parser.add_argument("--database-url", help="a PostgreSQL server (default: embedded)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="wamgr-failover-"))
    server_url = args.database_url or embedded.acquire(home)
    results: dict[str, list[float]] = {}
    try:
        for name, signum in (("SIGKILL", signal.SIGKILL), ("SIGTERM", signal.SIGTERM)):
            for run in range(args.runs):
                took = one_run(server_url, signum, len(results) * 100 + run, home)
                results.setdefault(name, []).append(took)
                print(f"{name} run {run + 1}: {took:.2f} s", file=sys.stderr)
    finally:
        if args.database_url is None:
            embedded.release(home)
    summary = {
        name: {
            "runs": len(values),
            "min_s": round(min(values), 2),
            "median_s": round(statistics.median(values), 2),
            "max_s": round(max(values), 2),
        }
        for name, values in results.items()
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print("failover with default settings (lease_ttl 30 s, claim_interval 5 s)")
    print(f"{'signal':<8} {'runs':>4} {'min':>8} {'median':>8} {'max':>8}")
    for name, row in summary.items():
        print(
            f"{name:<8} {row['runs']:>4} {row['min_s']:>7.2f}s {row['median_s']:>7.2f}s "
            f"{row['max_s']:>7.2f}s"
        )


if __name__ == "__main__":
    main()
