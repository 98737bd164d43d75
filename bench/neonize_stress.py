"""Stress the neonize transport: many real neonize clients started and stopped at once.

neonize 0.5.2 keeps its clients in unlocked Go maps; 40 clients connecting and stopping at
once from their own threads killed the whole process (Go ``fatal error: concurrent map
writes``) in 4 runs of 10. This bench drives the real transport (host processes, the Go gate,
the links' teardown) the same way and checks that nothing crashes:

    .venv/bin/python bench/neonize_stress.py                  # 20 runs of the default below
    .venv/bin/python bench/neonize_stress.py --runs 1 --clients 40 --threads 40

Each run is a fresh process: ``--clients`` tenants (100) each get a real neonize client that
is created, connected (here the dial fails at DNS in ~10 ms) and stopped, from ``--threads``
threads (8), ``--rounds`` times (5). Every other link is closed right after it opened, so
stops race with starts. A run passes when every link reported exactly one ``Closed``, with
a dial failure or the requested close, no host process died other than by retiring, every
host thread and parent thread ended, and memory stayed flat. With no ``--database-url`` an
embedded PostgreSQL is started in a temporary folder.

By default one host serves a whole run (every client of every round: 500 connects behind
one Go gate, the harshest case), so the embedded server is started with
``max_connections = 1200``: neonize leaks one PostgreSQL connection per connect, and only a
retiring host gives them back. ``--host-connects N`` retires hosts after N links instead, as
production does (``neonize_host_connects``). ``--no-gate`` runs hosts whose gate lets every
call through, to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psycopg

from wamgr.transport.base import Closed, CloseReason, LinkEvent
from wamgr.transport.neonize import NeonizeSettings, NeonizeTransport

#: max_connections of the embedded server the bench starts (neonize leaks one per connect).
MAX_CONNECTIONS = 1200
#: Seconds one link may take from open to Closed.
LINK_TIMEOUT_S = 60.0
#: Host threads left when it runs no link: main, neonize's log thread, the gate watchdog,
#: the session writer.
IDLE_HOST_THREADS = 4


def _rss_kb(pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class _Collector:
    """Collects the events of one link; ``closed`` is set at its (first) Closed."""

    def __init__(self) -> None:
        self.closes: list[Closed] = []
        self.closed = threading.Event()

    def __call__(self, event: LinkEvent) -> None:
        if isinstance(event, Closed):
            self.closes.append(event)
            self.closed.set()


def stress_round(
    transport: NeonizeTransport, clients: int, threads: int, generation: int
) -> dict[str, Any]:
    """One round: every client opened (half closed at once) from ``threads`` threads."""
    problems: list[str] = []
    reasons: dict[str, int] = {}
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def work(index: int) -> None:
        start.wait()
        for n in range(index, clients, threads):
            events = _Collector()
            link = transport.create_link(f"stress-{n}", None, generation, events)
            link.open()
            if n % 2:  # closed while it starts: 0 to 29 ms after open
                threading.Event().wait((n * 7 % 30) / 1000)
                link.close(do_logout=False)
            if not events.closed.wait(LINK_TIMEOUT_S):
                with lock:
                    problems.append(f"stress-{n}: no Closed within {LINK_TIMEOUT_S:g} s")
                continue
            threading.Event().wait(0.05)  # a second Closed would show here
            with lock:
                if len(events.closes) != 1:
                    problems.append(f"stress-{n}: {len(events.closes)} Closed events")
                close = events.closes[0]
                reasons[str(close.reason)] = reasons.get(str(close.reason), 0) + 1
                if close.reason is CloseReason.DIAL_FAILED:
                    if not close.detail.startswith("failed to dial"):
                        problems.append(f"stress-{n}: dial failed otherwise: {close.detail}")
                elif close.reason is not CloseReason.REQUESTED:
                    problems.append(f"stress-{n}: closed by {close.reason}: {close.detail}")

    workers = [threading.Thread(target=work, args=(i,), name=f"stress-{i}") for i in range(threads)]
    began = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return {"seconds": time.monotonic() - began, "reasons": reasons, "problems": problems}


_NO_GATE = """
import contextlib
from wamgr.transport.neonize import gate
gate.GoGate.shared = contextlib.contextmanager(lambda self: (yield))
gate.GoGate.acquire_exclusive = lambda self: None
gate.GoGate.release_exclusive = lambda self: None
"""


def one_run(
    database_url: str,
    clients: int,
    threads: int,
    rounds: int,
    host_connects: int,
    no_gate: bool = False,
) -> dict[str, Any]:
    """A whole run in this process; returns what it measured (``ok`` says whether it passed)."""
    baseline = {t.ident for t in threading.enumerate()}
    settings = NeonizeSettings(database_url, tenants_per_host=clients, host_connects=host_connects)
    host_env = {}
    if no_gate:  # for comparison only: hosts whose gate lets everything through
        patch = Path(tempfile.mkdtemp(prefix="wamgr-nogate-"))
        (patch / "sitecustomize.py").write_text(_NO_GATE)
        host_env["PYTHONPATH"] = os.pathsep.join([str(patch), *sys.path])
    transport = NeonizeTransport(settings, host_env=host_env)
    peak_host_rss: dict[int, int] = {}
    watching = threading.Event()

    def watch() -> None:  # the largest RSS each host reaches
        while not watching.wait(0.2):
            for host in transport.hosts():
                try:
                    rss = _rss_kb(host["pid"])
                except OSError:
                    continue
                peak_host_rss[host["pid"]] = max(rss, peak_host_rss.get(host["pid"], 0))

    watcher = threading.Thread(target=watch, name="stress-watch", daemon=True)
    watcher.start()
    result: dict[str, Any] = {"rounds": [], "problems": []}
    try:
        for generation in range(1, rounds + 1):
            outcome = stress_round(transport, clients, threads, generation)
            threading.Event().wait(0.3)  # retiring hosts leave
            hosts = transport.host_stats()
            busy = [h for h in hosts if h["threads"] > IDLE_HOST_THREADS or h["open_links"]]
            if busy:
                outcome["problems"].append(f"hosts with threads or links left: {busy}")
            outcome["parent_rss_kb"] = _rss_kb()
            outcome["hosts_running"] = len(hosts)
            outcome["abandoned"] = sum(h["abandoned"] for h in hosts)
            outcome["host_rss_kb"] = [h["rss_kb"] for h in hosts]
            outcome["host_threads"] = [h["threads"] for h in hosts]
            outcome["connects"] = sum(h["connects"] for h in hosts)
            result["rounds"].append(outcome)
            result["problems"].extend(outcome.pop("problems"))
    finally:
        watching.set()
        watcher.join(2)
        transport.close()
    exits = transport.exited_hosts()
    crashed = [(pid, code) for pid, code in exits if code != 0]
    if crashed:
        result["problems"].append(f"hosts that did not exit cleanly: {crashed}")
    threading.Event().wait(0.2)
    left = [t.name for t in threading.enumerate() if t.ident not in baseline and t.is_alive()]
    if left:
        result["problems"].append(f"parent threads left: {left}")
    rss = [r["parent_rss_kb"] for r in result["rounds"]]
    result["hosts_started"] = len(exits)
    result["peak_host_rss_kb"] = max(peak_host_rss.values(), default=0)
    result["parent_rss_kb"] = rss
    result["parent_rss_growth_kb"] = rss[-1] - rss[0] if rss else 0
    if len(rss) > 1 and rss[-1] - rss[1] > 20_000:
        result["problems"].append(f"parent memory grew: {rss}")
    result["ok"] = not result["problems"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--host-connects",
        type=int,
        help="links a host serves before it retires (default: all of a run's, one host)",
    )
    parser.add_argument("--database-url", default=os.environ.get("WAMGR_DATABASE_URL"))
    parser.add_argument(
        "--no-gate", action="store_true", help="for comparison: hosts without the Go gate"
    )
    parser.add_argument("--one-run", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.host_connects is None:
        args.host_connects = args.clients * args.rounds
    if args.one_run:
        result = one_run(
            args.database_url,
            args.clients,
            args.threads,
            args.rounds,
            args.host_connects,
            args.no_gate,
        )
        print(json.dumps(result))
        return

    home = None
    url = args.database_url
    if not url:
        from wamgr.store import embedded

        home = Path(tempfile.mkdtemp(prefix="wamgr-stress-"))
        url = embedded.acquire(home)
        # Room for one host to keep every connection neonize leaks (one per connect).
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"ALTER SYSTEM SET max_connections = {MAX_CONNECTIONS}")
        embedded.release(home)  # the last user stops the server; the next start reads it
        url = embedded.acquire(home)
    try:
        failures = 0
        for run in range(1, args.runs + 1):
            began = time.monotonic()
            proc = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--one-run",
                    f"--database-url={url}",
                    f"--clients={args.clients}",
                    f"--threads={args.threads}",
                    f"--rounds={args.rounds}",
                    f"--host-connects={args.host_connects}",
                    *(["--no-gate"] if args.no_gate else []),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            took = time.monotonic() - began
            try:
                result = json.loads(proc.stdout.strip().splitlines()[-1])
            except (IndexError, ValueError):
                result = {
                    "ok": False,
                    "problems": [f"exit {proc.returncode}: {proc.stderr[-800:]}"],
                }
            failures += not result["ok"]
            rounds = result.get("rounds", [])
            print(
                f"run {run:2d}: {'ok  ' if result['ok'] else 'FAIL'} exit={proc.returncode} "
                f"{took:5.1f} s, rounds "
                + " ".join(f"{r['seconds']:.1f}s" for r in rounds)
                + f", closes {rounds[-1]['reasons'] if rounds else '-'}"
                + f", hosts started {result.get('hosts_started', '-')}"
                + f", peak host RSS {result.get('peak_host_rss_kb', 0) // 1024} MB"
                + f", parent RSS/round {[kb // 1024 for kb in result.get('parent_rss_kb', [])]} MB"
                + f", host RSS/round {[[kb // 1024 for kb in r['host_rss_kb']] for r in rounds]} MB"
                + f", abandoned {[r['abandoned'] for r in rounds]}"
                + f", connects {[r['connects'] for r in rounds]}",
                flush=True,
            )
            for problem in result.get("problems", [])[:10]:
                print(f"        {problem}")
        print(f"{args.runs - failures} of {args.runs} runs passed")
        sys.exit(1 if failures else 0)
    finally:
        if home is not None:
            from wamgr.store import embedded

            embedded.release(home)
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
