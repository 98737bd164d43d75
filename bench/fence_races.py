"""The fence races of issue #12, run N times each: how often does the one-socket promise break?

Scenarios (each trial on a fresh database cloned from a migrated template):

* ``stop``: six threads call ``connect()`` on three tenants while another calls ``stop()``;
  a failure is any socket of that manager still open once ``stop()`` has returned.
* ``partition``: A holds a tenant; A's database connections freeze (a partition, through a
  freezable proxy) while a customer writes to the account every 2 s; B claims the tenant.
  A failure is A's socket still open at renew_deadline after the freeze, or two sockets.
* ``stall``: the tenant's lease row stalls for 5 s while A re-takes its lease after a drop
  and B, arriving late, claims it too; a failure is two sockets at once.

Short lease settings (TTL 3 s, renew interval 0.5 s, deadline 2 s) keep a trial to seconds.

    .venv/bin/python bench/fence_races.py --runs 20
    .venv/bin/python bench/fence_races.py --runs 5 --scenario partition --database-url URL
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from loguru import logger
from psycopg.conninfo import make_conninfo

# tests/dbproxy.py, the freezable proxy the tests use, is shared with this bench.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from dbproxy import FreezableProxy

from wamgr import Config, ConnectionManager, TenantState
from wamgr.clock import SystemClock, VirtualClock
from wamgr.store import embedded
from wamgr.store.db import Database
from wamgr.transport.sim import SimNotConnected, SimWhatsApp

SHORT = {"lease_ttl_s": 3.0, "renew_interval_s": 0.5, "renew_deadline_s": 2.0}
TEMPLATE = "wamgr_fence_races_template"
_names = itertools.count()


def _manager(url: str, home: Path, sim: SimWhatsApp, name: str, **settings) -> ConnectionManager:
    config = {
        "database_url": url,
        "home": home,
        "transport": sim,
        "instance_id": name,
        "claim_interval_s": 3600.0,
        "clock": SystemClock(),
        **SHORT,
    }
    config.update(settings)
    return ConnectionManager(Config(**config)).start()


def stop_race(url: str, home: Path) -> str | None:
    """Connects racing stop(); returns what went wrong, or None."""
    clock = VirtualClock()
    sim = SimWhatsApp(auto_pair=True, clock=clock)
    mgr = _manager(url, home, sim, "race", clock=clock, lease_ttl_s=1e6, renew_deadline_s=5e5)
    go = threading.Barrier(7)

    def connector(index: int) -> None:
        go.wait()
        for step in itertools.count():
            try:
                mgr.connect("abc"[(index + step) % 3], timeout=5)
            except Exception:
                return

    threads = [threading.Thread(target=connector, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    go.wait()
    time.sleep(0.05)
    mgr.stop()
    left = sim.open_sockets()
    for thread in threads:
        thread.join(10)
    return f"{left} sockets open after stop()" if left else None


def partition(url: str, home: Path) -> str | None:
    """A's database freezes while a customer writes; returns what went wrong, or None."""
    sim = SimWhatsApp(auto_pair=True)
    proxy = FreezableProxy.for_database(url).start()
    managers: list[ConnectionManager] = []
    done = threading.Event()
    try:
        first = _manager(proxy.database_url, home, sim, "A")
        managers.append(first)
        first.connect("t1")
        jid = first.wait_for("t1", TenantState.CONNECTED, timeout=5).jid
        managers.append(_manager(url, home, sim, "B", claim_interval_s=0.5))

        def customer() -> None:
            while not done.is_set():
                with contextlib.suppress(SimNotConnected):
                    sim.inbound(jid, "15550002222@s.whatsapp.net", "are you there?")
                done.wait(2.0)

        proxy.freeze()
        frozen_at = time.monotonic()
        threading.Thread(target=customer, daemon=True).start()
        managers[1].wait_for("t1", TenantState.CONNECTED, timeout=15)
        closed_at = sim.sockets(jid)[0].closed_at
        if sim.max_concurrent_sockets(jid) > 1:
            return "two sockets at once"
        if closed_at is None:
            return "A's socket still open"
        if closed_at - frozen_at > SHORT["renew_deadline_s"] + 0.5:
            return f"A's socket closed {closed_at - frozen_at:.1f} s after the freeze"
        return None
    finally:
        done.set()
        proxy.thaw()
        for mgr in reversed(managers):
            mgr.stop()
        proxy.stop()


def stall(url: str, home: Path) -> str | None:
    """The lease row stalls while A re-takes it and B claims it; what went wrong, or None."""
    sim = SimWhatsApp(auto_pair=True)
    managers: list[ConnectionManager] = []
    try:
        first = _manager(url, home, sim, "A")
        managers.append(first)
        first.connect("t1")
        jid = first.wait_for("t1", TenantState.CONNECTED, timeout=5).jid
        sim.drop(jid, "network")
        retry_at = first.wait_for("t1", TenantState.BACKOFF, timeout=5).next_retry_at.timestamp()
        with psycopg.connect(url) as blocker:
            time.sleep(max(0.0, retry_at - 0.8 - time.time()))
            blocker.execute("SELECT 1 FROM wamgr_leases WHERE tenant_id = 't1' FOR UPDATE")
            time.sleep(max(0.0, retry_at + 3.3 - time.time()))
            managers.append(_manager(url, home, sim, "B", claim_interval_s=0.5))
            time.sleep(max(0.0, retry_at + 5.0 - time.time()))
            blocker.rollback()
        managers[1].wait_for("t1", TenantState.CONNECTED, timeout=15)
        time.sleep(SHORT["lease_ttl_s"])
        if sim.max_concurrent_sockets(jid) > 1:
            return "two sockets at once"
        return None
    finally:
        for mgr in reversed(managers):
            mgr.stop()


SCENARIOS: dict[str, Callable[[str, Path], str | None]] = {
    "stop": stop_race,
    "partition": partition,
    "stall": stall,
}


def _fresh_database(server_url: str) -> str:
    name = f"wamgr_fence_races_{next(_names)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
    return make_conninfo(server_url, dbname=name)


def _drop(server_url: str, url: str) -> None:
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    """Run the scenarios and print, for each, how many trials broke the promise."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="trials per scenario (default 20)")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), action="append")
    parser.add_argument("--database-url", help="a PostgreSQL server (default: embedded)")
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="ERROR")

    home = Path(tempfile.mkdtemp(prefix="wamgr-fence-races-"))
    server_url = args.database_url or embedded.acquire(home)
    try:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{TEMPLATE}"')
        template = Database(make_conninfo(server_url, dbname=TEMPLATE), max_size=1)
        template.open()
        template.migrate()
        template.close()
        print(f"{'scenario':<10} {'runs':>4} {'failed':>6}  what went wrong")
        for name in args.scenario or list(SCENARIOS):
            problems: list[str] = []
            for _ in range(args.runs):
                url = _fresh_database(server_url)
                try:
                    problem = SCENARIOS[name](url, home / "home")
                except Exception as exc:  # a trial that blew up counts as failed
                    problem = f"{type(exc).__name__}: {exc}"
                finally:
                    _drop(server_url, url)
                if problem:
                    problems.append(problem)
            shown = "; ".join(sorted(set(problems)))[:200]
            print(f"{name:<10} {args.runs:>4} {len(problems):>6}  {shown}", flush=True)
    finally:
        if args.database_url is None:
            embedded.release(home)


if __name__ == "__main__":
    main()
