"""Scale benchmark: wamgr on the simulator with thousands of connected tenants.

    .venv/bin/python bench/scale.py --tenants 1000,10000 [--json] [--database-url URL]

For each N it measures, on a real clock and a ``SimWhatsApp(auto_pair=True)``:

- start-up: ``ConnectionManager(cfg).start()`` plus ``connect()`` of N new tenants (from
  ``--connect-workers`` threads) until all N are CONNECTED;
- restore: ``stop()``, then a new manager (another instance id, as after a process restart)
  on the same database, which restores the desired-connected tenants in ``start()``, until
  all N are CONNECTED again;
- memory per tenant: process RSS after N tenants connected minus RSS before, over N;
- p50 / p99 / max latency of ``is_connection_active`` and of ``connect`` on tenants already
  connected (which must open nothing), ``--calls`` calls from one thread and from
  ``--threads`` threads;
- sanity: ``sim.max_concurrent_sockets() == 1``, dial attempts, leases left after ``stop()``,
  and the thread count back to its baseline after ``stop()``.

Each N runs in a child process of its own so that memory and thread counts of one size do
not leak into the next (``--in-process`` turns that off). The database is the embedded
PostgreSQL in a temporary home (``Config(database_url=None, home=TMP)``), or with
``--database-url`` a scratch database created on that server for each N and dropped after.
The garbage collector is set as ``wamgr serve`` sets it (``wamgr.tune_gc()``; ``--python-gc``
keeps CPython's defaults), and the time spent in it is shown. Linux only (RSS and thread
counts come from ``/proc/self/status``). Whatever did not hold is
listed under the table, with wamgr's warnings counted by message; the exit status is then 1.
Last comes issue 10's table: each of its figures before, now, its goal, and whether it holds
(the SIGTERM and SIGKILL failover figures are bench/failover.py's).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from loguru import logger
from psycopg.conninfo import make_conninfo

from wamgr import Config, ConnectionManager, TenantState, WamgrError, tune_gc
from wamgr import logging as wamgr_logging
from wamgr.store import embedded
from wamgr.transport.sim import SimWhatsApp

#: Seconds to wait, after ``stop()`` returned, for leftover threads before counting them.
THREAD_SETTLE_S = 30.0
#: Seconds between progress lines while waiting for tenants.
PROGRESS_EVERY_S = 5.0


# --- measuring -------------------------------------------------------------------------------


def proc_status() -> dict[str, int]:
    """VmRSS and VmHWM in bytes and the OS thread count of this process."""
    out: dict[str, int] = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
            elif key == "Threads":
                out[key] = int(value)
    return out


def rss_bytes() -> int:
    """Resident set size now, after a garbage collection."""
    gc.collect()
    return proc_status()["VmRSS"]


def percentiles(latencies_s: list[float]) -> dict[str, float]:
    """p50, p99, max and mean in milliseconds (nearest rank)."""
    if not latencies_s:
        return {}
    ordered = sorted(latencies_s)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3

    return {
        "p50_ms": rank(0.50),
        "p99_ms": rank(0.99),
        "max_ms": ordered[-1] * 1e3,
        "mean_ms": sum(ordered) / len(ordered) * 1e3,
    }


def progress(text: str) -> None:
    """One progress line on stderr (results go to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


class GcClock:
    """Time spent in the interpreter's garbage collector (all threads wait meanwhile), by
    generation, from ``gc.callbacks``."""

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        generation = info["generation"]
        self.count[generation] += 1
        self.seconds[generation] += time.perf_counter() - self._began

    def summary(self) -> dict[str, Any]:
        return {
            "total_s": sum(self.seconds),
            "full": self.count[2],
            "full_s": round(self.seconds[2], 2),
            "thresholds": "/".join(map(str, gc.get_threshold())),
        }


class LogTally:
    """A loguru sink that counts warnings and errors, grouped by message shape."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def __call__(self, message: Any) -> None:
        record = message.record
        shape = re.sub(r"\d+", "#", record["message"].splitlines()[0])[:160]
        self.counts[f"{record['level'].name}: {shape}"] += 1

    def summary(self, limit: int = 8) -> dict[str, int]:
        return dict(self.counts.most_common(limit))


@dataclass
class CallRun:
    """Latencies of one call from many threads, with errors and wrong answers counted."""

    latencies_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)
    wrong: int = 0

    def result(self) -> dict[str, Any]:
        calls = len(self.latencies_s) + sum(self.errors.values())
        return {
            "calls": calls,
            **percentiles(self.latencies_s),
            "calls_per_s": calls / self.wall_s if self.wall_s else 0.0,
            "errors": dict(self.errors),
            "wrong_answers": self.wrong,
        }


def run_calls(
    call: Callable[[str], bool], tenant_ids: list[str], calls: int, threads: int
) -> CallRun:
    """Make ``calls`` calls of ``call`` on random tenants, split over ``threads`` threads.

    ``call`` returns whether its answer was right.
    """
    rng = random.Random(calls * 31 + threads)
    picks = [rng.choice(tenant_ids) for _ in range(calls)]
    shares = [picks[i::threads] for i in range(threads)]
    run = CallRun()
    lock = threading.Lock()
    start = threading.Barrier(threads + 1)

    def worker(share: list[str]) -> None:
        latencies, errors, wrong = [], Counter(), 0
        start.wait()
        for tenant_id in share:
            began = time.perf_counter()
            try:
                right = call(tenant_id)
            except Exception as exc:
                errors[type(exc).__name__] += 1
                continue
            latencies.append(time.perf_counter() - began)
            wrong += not right
        with lock:
            run.latencies_s.extend(latencies)
            run.errors.update(errors)
            run.wrong += wrong

    workers = [
        threading.Thread(target=worker, args=(share,), name=f"bench-call-{i}")
        for i, share in enumerate(shares)
    ]
    for thread in workers:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in workers:
        thread.join()
    run.wall_s = time.perf_counter() - began
    return run


# --- the database ----------------------------------------------------------------------------


@contextlib.contextmanager
def bench_database(database_url: str | None, home: Path, n: int) -> Iterator[dict[str, Any]]:
    """Where the managers' data lives: yields Config settings and a URL to inspect it.

    Embedded: the server in ``home`` is held open for the whole run, so that both managers
    share a warm server (its cold start is reported on its own). With a URL: a scratch
    database for this run is created on that server and dropped afterwards.
    """
    if database_url is None:
        began = time.perf_counter()
        url = embedded.acquire(home)
        info = {"embedded_pg_start_s": time.perf_counter() - began}
        try:
            yield {"settings": {"database_url": None, "home": home}, "url": url, "info": info}
        finally:
            embedded.release(home)
        return
    name = f"wamgr_bench_{os.getpid()}_{n}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_conninfo(database_url, dbname=name)
    try:
        yield {"settings": {"database_url": url, "home": home}, "url": url, "info": {}}
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def stored_counts(url: str) -> dict[str, Any]:
    """Leases left and tenants per stored state, read straight from the database."""
    with psycopg.connect(url, autocommit=True) as conn:
        leases = conn.execute("SELECT count(*) FROM wamgr_leases").fetchone()[0]
        states = conn.execute("SELECT state, count(*) FROM wamgr_tenants GROUP BY state").fetchall()
    return {"leases": leases, "states": dict(states)}


# --- one size --------------------------------------------------------------------------------


class Bench:
    """Everything measured for one number of tenants."""

    def __init__(self, n: int, args: argparse.Namespace):
        self.n = n
        self.args = args
        self.tenant_ids = [f"bench-{i:06d}" for i in range(n)]
        self.phase_timeout_s = args.phase_timeout or max(120.0, n / 20)
        self.result: dict[str, Any] = {"tenants": n, "problems": []}
        self.sim = SimWhatsApp(auto_pair=True)

    def problem(self, text: str) -> None:
        progress(f"PROBLEM: {text}")
        self.result["problems"].append(text)

    def config(self, settings: dict[str, Any], instance_id: str) -> Config:
        return Config(
            **settings,
            transport=self.sim,
            instance_id=instance_id,
            call_timeout_s=self.args.call_timeout,
            db_pool_size=self.args.db_pool_size,
        )

    def run(self) -> dict[str, Any]:
        home = Path(tempfile.mkdtemp(prefix="wamgr-bench-"))
        try:
            with bench_database(self.args.database_url, home, self.n) as db:
                self.result.update(db["info"])
                self.run_on(db["settings"], db["url"])
        finally:
            shutil.rmtree(home, ignore_errors=True)
        return self.result

    def run_on(self, settings: dict[str, Any], url: str) -> None:
        r = self.result
        baseline = self.thread_snapshot()
        r["threads_baseline"] = baseline["os"]

        progress(f"N={self.n}: start-up")
        began = time.perf_counter()
        mgr = ConnectionManager(self.config(settings, "bench-a")).start()
        r["start_s"] = time.perf_counter() - began
        rss_before = rss_bytes()
        r["connect_new"] = self.connect_all(mgr)
        r["startup_connect_s"] = time.perf_counter() - began - r["start_s"]
        missing = self.wait_connected(mgr, "start-up", began)
        r["startup_total_s"] = time.perf_counter() - began
        r["startup_not_connected"] = missing
        rss_after = rss_bytes()
        r["rss_before_mb"] = rss_before / 2**20
        r["rss_connected_mb"] = rss_after / 2**20
        r["rss_per_tenant_kb"] = (rss_after - rss_before) / self.n / 1024
        r["threads_connected"] = proc_status()["Threads"]
        r["open_sockets"] = self.sim.open_sockets()
        r["dial_attempts_startup"] = self.sim.dial_attempts()

        progress(f"N={self.n}: latency")
        self.measure_latency(mgr)
        self.measure_new_at_n(mgr)
        began = time.perf_counter()
        mgr.statuses()
        r["statuses_call_s"] = time.perf_counter() - began

        r["stop_a"] = self.stop(mgr, baseline, url)

        progress(f"N={self.n}: restore")
        dials = self.sim.dial_attempts()
        began = time.perf_counter()
        mgr = ConnectionManager(self.config(settings, "bench-b")).start()
        r["restore_start_s"] = time.perf_counter() - began
        missing = self.wait_connected(mgr, "restore", began)
        r["restore_total_s"] = time.perf_counter() - began
        r["restore_not_connected"] = missing
        r["dial_attempts_restore"] = self.sim.dial_attempts() - dials
        r["rss_restored_mb"] = rss_bytes() / 2**20
        r["stop_b"] = self.stop(mgr, baseline, url)

        r["max_concurrent_sockets"] = self.sim.max_concurrent_sockets()
        r["rss_peak_mb"] = proc_status()["VmHWM"] / 2**20
        if r["max_concurrent_sockets"] != 1:
            self.problem(f"max_concurrent_sockets is {r['max_concurrent_sockets']}, not 1")
        for phase in ("startup", "restore"):
            key = f"dial_attempts_{phase}"
            if r[key] != self.n:
                self.problem(f"{phase}: {r[key]} dial attempts for {self.n} tenants")

    # --- phases ----------------------------------------------------------------------------

    def connect_all(self, mgr: ConnectionManager) -> dict[str, Any]:
        """``connect()`` every (new) tenant from a few threads; latencies and errors."""
        errors: Counter[str] = Counter()
        latencies: list[float] = []

        def connect(tenant_id: str) -> float | None:
            began = time.perf_counter()
            try:
                mgr.connect(tenant_id)
            except WamgrError as exc:
                errors[type(exc).__name__] += 1
                return None
            return time.perf_counter() - began

        with ThreadPoolExecutor(self.args.connect_workers, "bench-connect") as pool:
            for latency in pool.map(connect, self.tenant_ids):
                if latency is not None:
                    latencies.append(latency)
        if errors:
            self.problem(f"connect() of new tenants failed: {dict(errors)}")
        return {**percentiles(latencies), "errors": dict(errors)}

    def wait_connected(self, mgr: ConnectionManager, phase: str, began: float) -> dict[str, int]:
        """Wait until every tenant is CONNECTED; returns the states of those that were not."""
        deadline = began + self.phase_timeout_s
        last_report = time.perf_counter()
        for done, tenant_id in enumerate(self.tenant_ids):
            left = deadline - time.perf_counter()
            if left <= 0:
                break
            try:
                mgr.wait_for(tenant_id, TenantState.CONNECTED, timeout=left)
            except WamgrError:
                break
            if time.perf_counter() - last_report > PROGRESS_EVERY_S:
                last_report = time.perf_counter()
                progress(f"  {phase}: {done + 1}/{self.n} connected")
        else:
            return {}
        states = Counter(str(s.state) for s in mgr.statuses(timeout=60))
        missing = {state: count for state, count in states.items() if state != "connected"}
        missing["unknown"] = self.n - sum(states.values())
        missing = {state: count for state, count in missing.items() if count}
        self.problem(
            f"{phase}: not all connected within {self.phase_timeout_s:g} s; others: {missing}"
        )
        return missing

    def measure_latency(self, mgr: ConnectionManager) -> None:
        """is_connection_active and connect on connected tenants, from 1 and many threads."""
        calls, threads = self.args.calls, self.args.threads
        dials = self.sim.dial_attempts()

        def active(tenant_id: str) -> bool:
            return mgr.is_connection_active(tenant_id)

        def connect(tenant_id: str) -> bool:
            return mgr.connect(tenant_id).state is TenantState.CONNECTED

        for name, call in (("is_connection_active", active), ("connect_connected", connect)):
            for count in (1, threads):
                run = run_calls(call, self.tenant_ids, calls, count)
                self.result[f"{name}_{count}t"] = run.result()
                if run.errors or run.wrong:
                    self.problem(
                        f"{name} from {count} threads: errors {dict(run.errors)}, "
                        f"{run.wrong} wrong answers"
                    )
        opened = self.sim.dial_attempts() - dials
        self.result["dials_during_latency"] = opened
        if opened:
            self.problem(f"connect() on connected tenants opened {opened} links")

    def stop(self, mgr: ConnectionManager, baseline: dict[str, Any], url: str) -> dict[str, Any]:
        """stop(); its duration, leftover threads (then and after settling), stored leases."""
        began = time.perf_counter()
        mgr.stop()
        out: dict[str, Any] = {"stop_s": time.perf_counter() - began}
        out["threads_after_stop"] = proc_status()["Threads"] - baseline["os"]
        leftover = self.settle_threads(baseline["idents"])
        out["threads_left_after_settle"] = leftover
        out["open_sockets"] = self.sim.open_sockets()
        out.update(stored_counts(url))
        if leftover:
            self.problem(f"threads still alive {THREAD_SETTLE_S:g} s after stop(): {leftover}")
        if out["open_sockets"]:
            self.problem(f"{out['open_sockets']} sockets still open after stop()")
        if out["leases"]:
            self.problem(f"{out['leases']} leases still held after stop()")
        stale = {state: count for state, count in out["states"].items() if state != "stopped"}
        if stale:
            self.problem(f"stored states after stop() that are not 'stopped': {stale}")
        return out

    # --- threads ---------------------------------------------------------------------------

    @staticmethod
    def thread_snapshot() -> dict[str, Any]:
        return {
            "os": proc_status()["Threads"],
            "idents": {t.ident for t in threading.enumerate()},
        }

    @staticmethod
    def settle_threads(before: set[int | None]) -> dict[str, int]:
        """Join threads started since ``before`` for a while; the kinds still alive, counted."""
        deadline = time.monotonic() + THREAD_SETTLE_S
        for thread in threading.enumerate():
            if thread.ident not in before:
                thread.join(max(0.0, deadline - time.monotonic()))
        alive = [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]
        return dict(Counter(re.sub(r"[-_]?\d+$", "", t.name) for t in alive))

    # --- reporting -------------------------------------------------------------------------------

    def measure_new_at_n(self, mgr: ConnectionManager) -> None:
        """``connect()`` of new tenants one at a time while the N are connected (each then
        removed, so the restore still restores N)."""
        latencies: list[float] = []
        extra = [f"extra-{i:04d}" for i in range(self.args.new_at_n)]
        for tenant_id in extra:
            began = time.perf_counter()
            mgr.connect(tenant_id)
            latencies.append(time.perf_counter() - began)
            time.sleep(0.01)  # a tenant added now and then, not a burst
        for tenant_id in extra:
            mgr.remove(tenant_id)
        self.result["connect_new_at_n"] = percentiles(latencies)


ROWS: list[tuple[str, str, str]] = [
    # (label, key path (several joined by "|" are shown as "a / b"), format)
    ("embedded PG cold start (s)", "embedded_pg_start_s", "{:.2f}"),
    ("start(), empty database (s)", "start_s", "{:.2f}"),
    ("connect() of N new tenants, in parallel", "connect_new", "p"),
    ("connect() of a new tenant at N, 1 thread", "connect_new_at_n", "p"),
    ("start + connect N -> all CONNECTED (s)", "startup_total_s", "{:.2f}"),
    ("restore: start() returns (s)", "restore_start_s", "{:.2f}"),
    ("restore: start -> all CONNECTED (s)", "restore_total_s", "{:.2f}"),
    ("RSS before tenants (MiB)", "rss_before_mb", "{:.1f}"),
    ("RSS with N connected (MiB)", "rss_connected_mb", "{:.1f}"),
    ("RSS per tenant (KiB)", "rss_per_tenant_kb", "{:.1f}"),
    ("RSS peak (MiB)", "rss_peak_mb", "{:.1f}"),
    ("OS threads: baseline / N connected", "threads_baseline|threads_connected", "{}"),
    ("is_connection_active, 1 thread", "is_connection_active_1t", "p"),
    ("is_connection_active, T threads", "is_connection_active_Tt", "p"),
    ("connect() when connected, 1 thread", "connect_connected_1t", "p"),
    ("connect() when connected, T threads", "connect_connected_Tt", "p"),
    ("statuses(), one call (s)", "statuses_call_s", "{:.2f}"),
    ("stop() after start-up / restore (s)", "stop_a.stop_s|stop_b.stop_s", "{:.2f}"),
    (
        "threads over baseline after stop()",
        "stop_a.threads_after_stop|stop_b.threads_after_stop",
        "{}",
    ),
    (
        "threads alive 30 s after stop()",
        "stop_a.threads_left_after_settle|stop_b.threads_left_after_settle",
        "{}",
    ),
    ("leases left after stop()", "stop_a.leases|stop_b.leases", "{}"),
    ("sockets open after stop()", "stop_a.open_sockets|stop_b.open_sockets", "{}"),
    ("stored states after stop()", "stop_a.states|stop_b.states", "{}"),
    ("dial attempts: start-up / restore", "dial_attempts_startup|dial_attempts_restore", "{}"),
    ("max concurrent sockets (must be 1)", "max_concurrent_sockets", "{}"),
    ("garbage collector thresholds", "gc.thresholds", "{}"),
    ("time in garbage collection, with RSS reads (s)", "gc.total_s", "{:.2f}"),
    ("full collections / their time (s)", "gc.full|gc.full_s", "{}"),
    ("problems", "problems", "n"),
]


#: Issue 10's goals: (label, key path, unit, figure before issue 10, goal); a figure holds
#: when it is at most its goal. The last four are measured at N tenants (N = 10,000 there).
GOALS: list[tuple[str, str, str, float, float]] = [
    ("start() -> all connected (restore)", "restore_total_s", "s", 40.0, 10.0),
    ("connect() of a new tenant at N, p50", "connect_new_at_n.p50_ms", "ms", 29.0, 5.0),
    ("is_connection_active, T threads, p99", "is_connection_active_Tt.p99_ms", "ms", 4.9, 0.5),
    ("RSS per connected tenant", "rss_per_tenant_kb", "KiB", 33.6, 25.0),
    ("stop() with N tenants", "stop_a.stop_s", "s", 4.7, 2.0),
]


def goals_table(results: list[dict[str, Any]], threads: int) -> str:
    """Issue 10's table: each figure, the goal, and whether it holds, per N."""
    lines = []
    for r in results:
        lines.append(f"issue 10 goals at N={r['tenants']:,} (before: the issue's figures)")
        lines.append(f"{'figure':<40} {'before':>9} {'now':>9} {'goal':>9}  holds")
        for label, path, unit, before, goal in GOALS:
            value = lookup(r, path, threads)
            now = "-" if value is None else f"{value:.2f}"
            holds = "-" if value is None else ("yes" if value <= goal else "NO")
            lines.append(
                f"{label.replace('T threads', f'{threads} threads'):<40} "
                f"{before:>6.1f} {unit:<2} {now:>6} {unit:<2} {goal:>6.1f} {unit:<2} {holds}"
            )
    return "\n".join(lines)


def lookup(result: dict[str, Any], path: str, threads: int) -> Any:
    value: Any = result
    for part in path.replace("_Tt", f"_{threads}t").split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def cell(result: dict[str, Any], path: str, fmt: str, threads: int) -> str:
    if fmt == "n":
        return str(len(result.get("problems", [])) + ("error" in result))
    if "|" in path:
        return " / ".join(cell(result, part, fmt, threads) for part in path.split("|"))
    value = lookup(result, path, threads)
    if value is None:
        return "-"
    if fmt == "p":
        text = f"{value['p50_ms']:.2f} / {value['p99_ms']:.2f} ms" if "p50_ms" in value else "-"
        if "calls_per_s" in value:
            text += f" ({value['calls_per_s']:,.0f}/s)"
        return text
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "0"
    return fmt.format(value)


def table(results: list[dict[str, Any]], threads: int) -> str:
    head = ["N tenants", *(f"{r['tenants']:,}" for r in results)]
    rows = [head] + [
        [label.replace("T threads", f"{threads} threads")]
        + [cell(r, path, fmt, threads) for r in results]
        for label, path, fmt in ROWS
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = []
    for r in results:
        for text in r.get("problems", []):
            notes.append(f"N={r['tenants']:,}: {text}")
        if "error" in r:
            notes.append(f"N={r['tenants']:,}: FAILED: {r['error']}")
        for line, count in r.get("log_warnings", {}).items():
            notes.append(f"N={r['tenants']:,}: logged {count}x {line}")
    legend = "latencies: p50 / p99 per call (calls per second over all threads)"
    return "\n".join([*lines, legend, *(["", *notes] if notes else [])])


# --- entry points ----------------------------------------------------------------------------


def run_one(n: int, args: argparse.Namespace) -> dict[str, Any]:
    """Run one size in this process, with wamgr's warnings counted."""
    wamgr_logging.configure(args.log_level)
    if not args.python_gc:
        tune_gc()  # as ``wamgr serve`` does
    tally = LogTally()
    sink = logger.add(tally, level="WARNING", format="{message}")
    collector = GcClock()
    gc.callbacks.append(collector)
    try:
        result = Bench(n, args).run()
    except Exception as exc:
        logger.opt(exception=exc).error("benchmark of {} tenants failed", n)
        result = {"tenants": n, "error": f"{type(exc).__name__}: {exc}", "problems": []}
    finally:
        logger.remove(sink)
        gc.callbacks.remove(collector)
    result["log_warnings"] = tally.summary()
    result["gc"] = collector.summary()
    return result


def run_child(n: int, args: argparse.Namespace) -> dict[str, Any]:
    """Run one size in a fresh Python process and return its result."""
    command = [sys.executable, __file__, "--child", "--tenants", str(n)]
    names = ("calls", "new_at_n", "threads", "connect_workers", "call_timeout", "db_pool_size")
    for name in names:
        command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    command += ["--log-level", args.log_level]
    if args.python_gc:
        command.append("--python-gc")
    if args.phase_timeout:
        command += ["--phase-timeout", str(args.phase_timeout)]
    if args.database_url:
        command += ["--database-url", args.database_url]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode == 0 and lines:
        return json.loads(lines[-1])
    return {
        "tenants": n,
        "error": f"child exited with {done.returncode}; stdout: {done.stdout[-500:]!r}",
        "problems": [],
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", default="1000,10000", help="comma-separated sizes")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server to use (a scratch database is created on it per size); "
        "default: the embedded PostgreSQL in a temporary home",
    )
    parser.add_argument("--calls", type=int, default=10_000, help="calls per latency run")
    parser.add_argument(
        "--new-at-n", type=int, default=200, help="new tenants connected one at a time at N"
    )
    parser.add_argument("--threads", type=int, default=8, help="threads of the parallel runs")
    parser.add_argument(
        "--connect-workers", type=int, default=8, help="threads connecting the new tenants"
    )
    parser.add_argument("--call-timeout", type=float, default=10.0, help="Config.call_timeout_s")
    parser.add_argument("--db-pool-size", type=int, default=10, help="Config.db_pool_size")
    parser.add_argument(
        "--phase-timeout",
        type=float,
        help="seconds until all N must be connected (default: max(120, N / 20))",
    )
    parser.add_argument("--log-level", default="ERROR", help="wamgr log lines shown on stderr")
    parser.add_argument("--in-process", action="store_true", help="run every size in this process")
    parser.add_argument(
        "--python-gc",
        action="store_true",
        help="keep CPython's garbage collector settings (default: wamgr.tune_gc(), as "
        "`wamgr serve` runs)",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = [int(part) for part in args.tenants.split(",") if part.strip()]
    if args.child:
        result = run_one(sizes[0], args)
        print(json.dumps(result), flush=True)
        # Leftover non-daemon actor threads (reported above) must not keep the child alive.
        os._exit(0)
    results = [run_one(n, args) if args.in_process else run_child(n, args) for n in sizes]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(table(results, args.threads))
        print()
        print(goals_table(results, args.threads))
    return 1 if any("error" in r or r["problems"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
