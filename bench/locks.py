"""Processing-lock benchmark: wamgr's one-statement claim against the old read-then-write.

    .venv/bin/python bench/locks.py [--threads 32] [--keys 10] [--claims 5000] [--json]
                                    [--database-url URL]

Every approach runs the same load against the same PostgreSQL: ``--threads`` threads take
turns on ``--keys`` keys until ``--claims`` claims succeeded in all. A thread that gets a key
enters a critical section that counts the holders of that key, stays ``--hold-ms`` inside,
leaves, and releases; a refused attempt moves on to the next key. Measured: successful
claims per second (each one claim, critical section and release), attempts per second,
p50 / p99 latency of one claim attempt (the claim statement(s) only), refusals,
**duplicate holders** (entries into a key's critical section while another holder was
inside: must be 0), and rows left in the table afterwards.

Approaches:

- ``SELECT 1`` — one round trip per attempt and no lock at all: the floor;
- ``wamgr claim`` — :meth:`wamgr.store.locks.ProcessingLocks.claim` and ``Claim.release``;
- ``old gateway`` — what the old gateway did: read the row, write it, answer yes either way;
  its release only stamped a time, so rows pile up;
- ``read-check-write`` — the old approach with its answer fixed (refuse when the read shows
  a live holder) and a real delete on release: still two statements, still a race.

A second scenario runs one thread on one key (no contention): the latency of a claim alone.
The database is the embedded PostgreSQL in a temporary home, or with ``--database-url`` a
scratch database created on that server and dropped afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from loguru import logger
from psycopg.conninfo import make_conninfo

from wamgr.store import embedded
from wamgr.store.db import Database
from wamgr.store.locks import ProcessingLocks

#: Seconds a claim lives in every approach (long enough that none expires during the run).
TTL_S = 30.0


# --- the approaches ------------------------------------------------------------------------


class Approach:
    """A way to take and give up a lock on a key; ``claim`` returns a handle or None."""

    name = ""

    def __init__(self, db: Database, owner: str):
        self.db = db
        self.owner = owner

    def setup(self) -> None:
        """Create what the approach needs (called once, before the run)."""

    def claim(self, key: str) -> Any:
        raise NotImplementedError

    def release(self, key: str, handle: Any) -> None:
        raise NotImplementedError

    def rows_left(self) -> int | None:
        """Rows in the approach's table after the run (None: it has no table)."""
        return None

    def _count(self, table: str) -> int:
        with self.db.connection() as conn:
            row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(row[0]) if row else 0


class SelectOne(Approach):
    """No lock: one ``SELECT 1`` round trip per attempt, the floor of any claim."""

    name = "SELECT 1 (floor, no lock)"

    def claim(self, key: str) -> Any:
        with self.db.connection() as conn:
            conn.execute("SELECT 1").fetchone()
        return True

    def release(self, key: str, handle: Any) -> None:
        pass


class WamgrClaim(Approach):
    """wamgr's ProcessingLocks: one INSERT … ON CONFLICT DO UPDATE … WHERE expired."""

    name = "wamgr claim (1 statement)"

    def setup(self) -> None:
        self.locks = ProcessingLocks(self.db, owner=self.owner)

    def claim(self, key: str) -> Any:
        return self.locks.claim(key, ttl=TTL_S)

    def release(self, key: str, handle: Any) -> None:
        handle.release()

    def rows_left(self) -> int | None:
        return self._count("wamgr_processing_locks")


_OLD_TABLE = """
CREATE TABLE IF NOT EXISTS bench_old_locks (
    key text PRIMARY KEY, owner text, expires_at timestamptz, updated_at timestamptz)
"""
_OLD_WRITE = """
INSERT INTO bench_old_locks (key, owner, expires_at, updated_at)
VALUES (%s, %s, now() + %s * interval '1 second', now())
ON CONFLICT (key) DO UPDATE SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at,
    updated_at = now()
"""


class OldGateway(Approach):
    """The old gateway: read the row, write it, return True either way; release stamps."""

    name = "old gateway (read, write, yes)"

    def setup(self) -> None:
        with self.db.connection() as conn:
            conn.execute(_OLD_TABLE)
            conn.execute("TRUNCATE bench_old_locks")

    def claim(self, key: str) -> Any:
        with self.db.connection() as conn:
            conn.execute(
                "SELECT owner, expires_at FROM bench_old_locks WHERE key = %s", (key,)
            ).fetchone()
            conn.execute(_OLD_WRITE, (key, self.owner, TTL_S))
        return True

    def release(self, key: str, handle: Any) -> None:
        with self.db.connection() as conn:
            conn.execute("UPDATE bench_old_locks SET updated_at = now() WHERE key = %s", (key,))

    def rows_left(self) -> int | None:
        return self._count("bench_old_locks")


class ReadCheckWrite(Approach):
    """The old approach with its answer fixed: refuse a live holder, delete on release."""

    name = "read-check-write (2 statements)"

    def setup(self) -> None:
        with self.db.connection() as conn:
            conn.execute(_OLD_TABLE)
            conn.execute("TRUNCATE bench_old_locks")

    def claim(self, key: str) -> Any:
        with self.db.connection() as conn:
            row = conn.execute(
                "SELECT expires_at > now() FROM bench_old_locks WHERE key = %s", (key,)
            ).fetchone()
            if row is not None and row[0]:
                return None
            conn.execute(_OLD_WRITE, (key, self.owner, TTL_S))
        return True

    def release(self, key: str, handle: Any) -> None:
        with self.db.connection() as conn:
            conn.execute("DELETE FROM bench_old_locks WHERE key = %s", (key,))

    def rows_left(self) -> int | None:
        return self._count("bench_old_locks")


APPROACHES: list[Callable[[Database, str], Approach]] = [
    SelectOne,
    WamgrClaim,
    OldGateway,
    ReadCheckWrite,
]


# --- the load ------------------------------------------------------------------------------


@dataclass
class Load:
    """One scenario: how many threads contend on how many keys for how many claims."""

    name: str
    threads: int
    keys: int
    claims: int
    hold_s: float


def percentiles(latencies_s: list[float]) -> dict[str, float]:
    """p50, p99 and max in milliseconds (nearest rank)."""
    if not latencies_s:
        return {}
    ordered = sorted(latencies_s)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3

    return {"p50_ms": rank(0.50), "p99_ms": rank(0.99), "max_ms": ordered[-1] * 1e3}


def run_load(approach: Approach, load: Load) -> dict[str, Any]:
    """Run ``load`` with ``approach``; returns its figures."""
    keys = [f"bench-tenant:1555{i:07d}" for i in range(load.keys)]
    guard = threading.Lock()
    holders: Counter[str] = Counter()
    duplicates = 0
    succeeded = 0
    refused = 0
    latencies: list[list[float]] = [[] for _ in range(load.threads)]
    errors: list[str] = []
    barrier = threading.Barrier(load.threads + 1)

    def worker(index: int) -> None:
        nonlocal duplicates, succeeded, refused
        mine = latencies[index]
        turn = index
        barrier.wait()
        try:
            while True:
                with guard:
                    if succeeded >= load.claims:
                        return
                key = keys[turn % len(keys)]
                turn += 1
                began = time.perf_counter()
                handle = approach.claim(key)
                mine.append(time.perf_counter() - began)
                if handle is None:
                    with guard:
                        refused += 1
                    continue
                with guard:
                    if holders[key]:
                        duplicates += 1
                    holders[key] += 1
                if load.hold_s:
                    time.sleep(load.hold_s)
                with guard:
                    holders[key] -= 1
                    succeeded += 1
                approach.release(key, handle)
        except Exception as exc:
            errors.append(repr(exc))

    threads = [
        threading.Thread(target=worker, args=(i,), name=f"bench-{i}") for i in range(load.threads)
    ]
    for thread in threads:
        thread.start()
    barrier.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    attempts = sum(len(mine) for mine in latencies)
    return {
        "approach": approach.name,
        "claims": succeeded,
        "attempts": attempts,
        "refused": refused,
        "seconds": elapsed,
        "claims_per_s": succeeded / elapsed,
        "attempts_per_s": attempts / elapsed,
        **percentiles([x for mine in latencies for x in mine]),
        "duplicate_holders": duplicates,
        "rows_left": approach.rows_left(),
        "errors": errors[:5],
    }


# --- the database ---------------------------------------------------------------------------


@contextlib.contextmanager
def bench_database(database_url: str | None) -> Iterator[str]:
    """A migrated wamgr database for the run: embedded in a temporary home, or a scratch
    database on ``database_url``'s server (dropped afterwards)."""
    if database_url is None:
        home = Path(tempfile.mkdtemp(prefix="wamgr-bench-locks-"))
        try:
            yield embedded.acquire(home)
        finally:
            embedded.release(home)
            shutil.rmtree(home, ignore_errors=True)
        return
    name = f"wamgr_bench_locks_{os.getpid()}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_conninfo(database_url, dbname=name)
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_version(db: Database) -> str:
    with db.connection() as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


# --- output ---------------------------------------------------------------------------------

_COLUMNS = [
    ("approach", "approach", "{}"),
    ("claims/s", "claims_per_s", "{:,.0f}"),
    ("attempts/s", "attempts_per_s", "{:,.0f}"),
    ("p50 ms", "p50_ms", "{:.2f}"),
    ("p99 ms", "p99_ms", "{:.2f}"),
    ("refused", "refused", "{:,}"),
    ("duplicate holders", "duplicate_holders", "{:,}"),
    ("rows left", "rows_left", "{}"),
]


def table(load: Load, rows: list[dict[str, Any]]) -> str:
    cells = [[title for title, _, _ in _COLUMNS]]
    for row in rows:
        cells.append(
            ["-" if row.get(key) is None else fmt.format(row[key]) for _, key, fmt in _COLUMNS]
        )
    widths = [max(len(r[i]) for r in cells) for i in range(len(_COLUMNS))]
    lines = [
        f"{load.name}: {load.threads} threads, {load.keys} keys, {load.claims:,} claims, "
        f"{load.hold_s * 1e3:g} ms in the critical section"
    ]
    for r in cells:
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
    for row in rows:
        for error in row["errors"]:
            lines.append(f"  error in {row['approach']}: {error}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=32, help="contending threads")
    parser.add_argument("--keys", type=int, default=10, help="keys they contend on")
    parser.add_argument("--claims", type=int, default=5000, help="successful claims per run")
    parser.add_argument(
        "--hold-ms", type=float, default=1.0, help="milliseconds inside the critical section"
    )
    parser.add_argument(
        "--single-claims", type=int, default=2000, help="claims of the one-thread run"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
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
    loads = [
        Load("contended", args.threads, args.keys, args.claims, args.hold_ms / 1e3),
        Load("uncontended", 1, 1, args.single_claims, 0.0),
    ]
    results: dict[str, Any] = {"loads": []}
    with bench_database(args.database_url) as url:
        db = Database(url, max_size=args.threads + 2, name="wamgr-bench")
        db.open()
        try:
            db.migrate()
            results["server_version"] = server_version(db)
            for load in loads:
                rows = []
                for make in APPROACHES:
                    approach = make(db, f"bench-{os.getpid()}")
                    approach.setup()
                    run_load(approach, Load("warm-up", load.threads, load.keys, 200, 0.0))
                    approach.setup()
                    with db.connection() as conn:
                        conn.execute("TRUNCATE wamgr_processing_locks")
                    rows.append(run_load(approach, load))
                results["loads"].append({"load": load.__dict__, "rows": rows})
        finally:
            db.close()
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    else:
        print(f"PostgreSQL {results['server_version']}")
        for entry in results["loads"]:
            print()
            print(table(Load(**entry["load"]), entry["rows"]))
    wamgr_row = next(r for r in results["loads"][0]["rows"] if r["approach"].startswith("wamgr"))
    return (
        1
        if wamgr_row["duplicate_holders"]
        or any(r["errors"] for e in results["loads"] for r in e["rows"])
        else 0
    )


if __name__ == "__main__":
    sys.exit(main())
