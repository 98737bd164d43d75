"""Failover time between two `wamgr serve` processes: the defaults against the old defaults.

For each run: a `wamgr sim`, two `wamgr serve` instances on one PostgreSQL, one tenant. The
instance that holds the tenant is stopped (SIGKILL, or SIGTERM), and the time until the other
one has it connected is measured (from the tenant's row; the simulator's socket log proves
there were never two sockets). Every signal runs with today's default lease settings and, in
the same run, with the old ones (TTL 30 / renew 10 / deadline 20 / claim 5 s), so the ratio
is measured on one machine under one load. It also measures what the defaults cost: the ONE
statement that renews every lease of an instance, at ``--leases`` leases.

    .venv/bin/python bench/failover.py --runs 3                # embedded PostgreSQL
    .venv/bin/python bench/failover.py --database-url URL --runs 5 --json

Expect SIGKILL ≈ lease_ttl - renew_interval / 2 (nobody can know the
holder died until its lease expires); SIGTERM well under a second (the stopping instance
releases its leases and NOTIFYs; the other claims at once).
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

from wamgr.config import Config
from wamgr.store import embedded
from wamgr.store.db import Database
from wamgr.store.instances import InstanceStore
from wamgr.store.leases import LeaseStore
from wamgr.transport.sim_server import fetch_stats

#: The lease settings before issue 10, passed as environment variables.
OLD_DEFAULTS = {
    "WAMGR_LEASE_TTL": "30",
    "WAMGR_RENEW_INTERVAL": "10",
    "WAMGR_RENEW_DEADLINE": "20",
    "WAMGR_CLAIM_INTERVAL": "5",
}
#: The settings compared: name -> environment (empty: wamgr's defaults).
SETTINGS = {"defaults": {}, "old defaults": OLD_DEFAULTS}


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


def one_run(server_url: str, signum: int, run: int, logs: Path, settings: dict[str, str]) -> float:
    """Seconds from sending ``signum`` to the holder until the other instance is connected,
    with the lease ``settings`` (environment variables) on both instances."""
    dbname = f"wamgr_failover_{os.getpid()}_{run}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    url = make_conninfo(server_url, dbname=dbname)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAMGR_")}
    env["WAMGR_DATABASE_URL"] = url
    env.update(settings)
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
        b_log = logs / f"b-{run}.log"
        _until(lambda: b"manager b started" in b_log.read_bytes(), 60, "b to start")
        time.sleep(1.0)  # b has made its first claim pass (the tenant is a's): b stands by
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


def renewal_cost(server_url: str, leases: int, rounds: int) -> dict[str, float]:
    """Milliseconds the ONE renewal statement takes with ``leases`` leases held (p50, max)."""
    dbname = f"wamgr_renewal_{os.getpid()}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    db = Database(make_conninfo(server_url, dbname=dbname), max_size=2)
    try:
        db.open()
        db.migrate()
        claim = InstanceStore(db).claim("bench", 30)
        store = LeaseStore(db, claim)
        with db.connection() as conn:
            conn.execute(
                "INSERT INTO wamgr_tenants (tenant_id)"
                " SELECT 't' || g FROM generate_series(1, %s) g",
                (leases,),
            )
            conn.execute(
                "INSERT INTO wamgr_leases (tenant_id, owner, incarnation, token, expires_at)"
                " SELECT 't' || g, 'bench', %s, nextval('wamgr_lease_tokens'),"
                " now() + interval '30 seconds' FROM generate_series(1, %s) g",
                (claim.incarnation, leases),
            )
            tokens = dict(conn.execute("SELECT tenant_id, token FROM wamgr_leases").fetchall())
        took = []
        for _ in range(rounds):
            began = time.perf_counter()
            renewed = store.renew("bench", tokens, 30)
            took.append((time.perf_counter() - began) * 1e3)
            assert len(renewed.tenants) == leases
        return {"leases": leases, "p50_ms": statistics.median(took), "max_ms": max(took)}
    finally:
        db.close()
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per signal and settings")
    parser.add_argument("--database-url", help="a PostgreSQL server (default: embedded)")
    parser.add_argument("--leases", type=int, default=10_000, help="leases renewed at once")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="wamgr-failover-"))
    server_url = args.database_url or embedded.acquire(home)
    results: dict[str, dict[str, list[float]]] = {}
    try:
        cost = renewal_cost(server_url, args.leases, rounds=20)
        print(f"renewal of {args.leases} leases: {cost['p50_ms']:.1f} ms p50", file=sys.stderr)
        number = 0
        for name, signum in (("SIGTERM", signal.SIGTERM), ("SIGKILL", signal.SIGKILL)):
            for run in range(args.runs):
                for label, settings in SETTINGS.items():
                    number += 1
                    took = one_run(server_url, signum, number, home, settings)
                    results.setdefault(name, {}).setdefault(label, []).append(took)
                    print(f"{name} {label} run {run + 1}: {took:.2f} s", file=sys.stderr)
    finally:
        if args.database_url is None:
            embedded.release(home)
    summary = {
        name: {
            label: {
                "runs": len(values),
                "min_s": round(min(values), 2),
                "median_s": round(statistics.median(values), 2),
                "max_s": round(max(values), 2),
            }
            for label, values in by_label.items()
        }
        for name, by_label in results.items()
    }
    if args.json:
        print(json.dumps({"failover": summary, "renewal": cost}, indent=2))
        return
    new = Config()
    print(
        f"defaults: lease_ttl {new.lease_ttl_s:g} s, renew_interval {new.renew_interval_s:g} s,"
        f" renew_deadline {new.renew_deadline_s:g} s, claim_interval {new.claim_interval_s:g} s;"
        " old defaults: 30 / 10 / 20 / 5 s"
    )
    print(
        f"one renewal statement, {cost['leases']} leases: {cost['p50_ms']:.1f} ms p50, "
        f"{cost['max_ms']:.1f} ms max = {cost['p50_ms'] / 10 / new.renew_interval_s:.2f} % "
        f"of one database core at renew_interval {new.renew_interval_s:g} s"
    )
    print(f"{'signal':<8} {'settings':<13} {'runs':>4} {'min':>8} {'median':>8} {'max':>8} ratio")
    for name, by_label in summary.items():
        old_median = by_label["old defaults"]["median_s"]
        for label, row in by_label.items():
            ratio = f"{row['median_s'] / old_median:.2f}" if old_median else "-"
            print(
                f"{name:<8} {label:<13} {row['runs']:>4} {row['min_s']:>7.2f}s "
                f"{row['median_s']:>7.2f}s {row['max_s']:>7.2f}s {ratio:>5}"
            )
    print("ratio: median / median with the old defaults (lower is faster)")


if __name__ == "__main__":
    main()
