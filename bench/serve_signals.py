"""Does `wamgr serve` stop on SIGTERM after it was paused (SIGSTOP, SIGCONT)? (issue #12, 5)

Each trial starts `wamgr serve --transport sim` with one tenant, waits until it serves, pauses
it with SIGSTOP (held for --paused seconds once the process is stopped; 0: SIGCONT follows at
once, as a quick freeze and thaw does), continues it with SIGCONT, sends SIGTERM, and measures
how long it takes to exit. A process still running after the stop budget counts as hung and
is killed. Before the fix 5 of 11 trials hung: the kernel handed SIGTERM to a thread other
than the main one, which slept in an untimed wait.

    .venv/bin/python bench/serve_signals.py                       # 20 trials, embedded PostgreSQL
    .venv/bin/python bench/serve_signals.py --trials 50 --paused 1 --json
    .venv/bin/python bench/serve_signals.py --database-url postgresql://…

Exit status 1 if any trial hung or exited with another code than 0.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from wamgr.cli.main import SERVE_STOP_BUDGET_S
from wamgr.store import embedded

#: Seconds a serve process gets to start serving.
START_S = 60.0
#: Seconds between two looks at a starting (or stopping) process: another process, no event.
POLL_S = 0.05


def _until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(POLL_S)


def _stopped(pid: int) -> bool:
    """Whether every thread of ``pid`` is stopped (state T in /proc)."""
    tasks = Path(f"/proc/{pid}/task")
    states = []
    for task in tasks.iterdir():
        stat = (task / "stat").read_text()
        states.append(stat[stat.rindex(")") + 2])
    return all(state == "T" for state in states)


def one_trial(url: str, home: Path, trial: int, paused_s: float) -> tuple[float | None, int]:
    """Seconds from SIGTERM to exit (None if hung: killed after the budget), and exit code."""
    log_path = home / f"serve-{trial}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAMGR_")}
    env.update(WAMGR_HOME=str(home / "home"), WAMGR_CLAIM_INTERVAL="0.2", PYTHONUNBUFFERED="1")
    argv = [sys.executable, "-m", "wamgr.cli", "--database-url", url, "serve"]
    argv += ["--transport", "sim", "--instance-id", f"bench-{trial}", "--port", "0"]
    with log_path.open("w") as log:
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _until(
            lambda: "wamgr serving as" in log_path.read_text() or proc.poll() is not None,
            START_S,
            "serve to start",
        )
        if proc.poll() is not None:
            raise SystemExit(f"serve exited with {proc.returncode}:\n{log_path.read_text()}")
        proc.send_signal(signal.SIGSTOP)
        if paused_s > 0:
            _until(lambda: _stopped(proc.pid), 10.0, "the process to stop")
            time.sleep(paused_s)
        proc.send_signal(signal.SIGCONT)
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        try:
            code = proc.wait(timeout=SERVE_STOP_BUDGET_S)
        except subprocess.TimeoutExpired:
            return None, -1
        return time.monotonic() - sent, code
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def main() -> None:
    """Run the trials and print what they took."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=20, help="trials (default 20)")
    parser.add_argument(
        "--paused", type=float, default=0.0, help="seconds to hold the process stopped"
    )
    parser.add_argument("--database-url", help="a PostgreSQL server (default: embedded)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="wamgr-serve-signals-"))
    server_url = args.database_url or embedded.acquire(home)
    dbname = f"wamgr_serve_signals_{os.getpid()}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    url = make_conninfo(server_url, dbname=dbname)
    subprocess.run(
        [sys.executable, "-m", "wamgr.cli", "--database-url", url, "tenants", "add", "bench"],
        check=True,
        capture_output=True,
    )
    took: list[float] = []
    hung = bad_exit = 0
    try:
        for trial in range(args.trials):
            seconds, code = one_trial(url, home, trial, args.paused)
            if seconds is None:
                hung += 1
                print(f"trial {trial + 1}: HUNG (killed after {SERVE_STOP_BUDGET_S:g} s)")
                continue
            took.append(seconds)
            bad_exit += code != 0
            print(f"trial {trial + 1}: exit {code} {seconds:.2f} s after SIGTERM", file=sys.stderr)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        if args.database_url is None:
            embedded.release(home)
    summary = {
        "trials": args.trials,
        "paused_s": args.paused,
        "hung": hung,
        "exit_not_0": bad_exit,
        "budget_s": SERVE_STOP_BUDGET_S,
        "median_s": round(statistics.median(took), 2) if took else None,
        "max_s": round(max(took), 2) if took else None,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"{args.trials} trials (paused {args.paused:g} s): {hung} hung, {bad_exit} exited "
            f"with another code than 0; SIGTERM to exit median {summary['median_s']} s, "
            f"max {summary['max_s']} s (budget {SERVE_STOP_BUDGET_S:g} s)"
        )
    sys.exit(1 if hung or bad_exit else 0)


if __name__ == "__main__":
    main()
