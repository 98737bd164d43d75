"""The ``wamgr`` group and ``wamgr serve``: global options, errors as exit codes, help, and
``serve`` as a user meets it.

``wamgr serve`` runs as a real subprocess on the simulator and is stopped with SIGTERM or
SIGINT, as an operator (or systemd) would stop it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import psycopg
import pytest
from click.testing import CliRunner, Result

from wamgr.cli import main
from wamgr.cli.main import SERVE_STOP_BUDGET_S
from wamgr.cli.signals import FORCED_EXIT_BASE

from .conftest import Wamgr, explain, ok, stored_statuses

#: Seconds a ``serve`` subprocess gets to reach a state, and to exit after a signal.
SERVE_DEADLINE_S = 20.0
#: Trials of the pause-then-SIGTERM race (bench/serve_signals.py runs more).
PAUSE_TRIALS = 4
#: Seconds between two status polls of a ``serve`` subprocess (another process: no event).
POLL_INTERVAL_S = 0.1


# --- configuration and database errors -----------------------------------------------------


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WAMGR_RENEW_INTERVAL": "25"}, "wamgr: WAMGR_RENEW_INTERVAL (25 s) must be shorter than"),
        ({"WAMGR_RENEW_DEADLINE": "40"}, "wamgr: WAMGR_RENEW_DEADLINE (40 s) must be shorter than"),
        ({"WAMGR_CLAIM_INTERVAL": "0"}, "wamgr: WAMGR_CLAIM_INTERVAL must be a positive number"),
        ({"WAMGR_LEASE_TTL": "soon"}, "wamgr: WAMGR_LEASE_TTL must be a number of seconds, got"),
        ({"WAMGR_LEASE_TTL": "nan"}, "wamgr: WAMGR_LEASE_TTL must be a finite number"),
        ({"WAMGR_LEASE_TTL": "1e308"}, "wamgr: WAMGR_LEASE_TTL must be at most 31536000 s"),
        ({"WAMGR_CALL_TIMEOUT": "inf"}, "wamgr: WAMGR_CALL_TIMEOUT must be a finite number"),
        ({"WAMGR_RENEW_INTERVAL": "0.003"}, "wamgr: WAMGR_RENEW_INTERVAL must be at least 0.1 s"),
    ],
    ids=[
        "renew_interval",
        "renew_deadline",
        "claim_interval",
        "not_a_number",
        "nan",
        "huge",
        "infinite_timeout",
        "milliseconds",
    ],
)
def test_inconsistent_settings_exit_2_with_one_line(
    wamgr: Wamgr, env: dict[str, str], message: str
) -> None:
    result = wamgr("status", env=env)

    assert result.exit_code == 2, explain(result)
    assert result.stdout == ""
    assert result.stderr.startswith(message)
    assert result.stderr.count("\n") == 1


def _one_line_exit_2(result: Result, message: str) -> None:
    assert result.exit_code == 2, explain(result)
    assert result.exception is None or isinstance(result.exception, SystemExit), explain(result)
    assert result.stdout == ""
    assert result.stderr.startswith(f"wamgr: {message}"), explain(result)
    assert result.stderr.count("\n") == 1, explain(result)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--log-level", "LOUD", "status"], "--log-level must be one of TRACE, DEBUG, INFO"),
        (["sim", "--port", "99999"], "--port must be a port from 0 to 65535, got '99999'"),
        (["sim-stats", "--port", "0"], "--port must be a port from 1 to 65535, got '0'"),
        (["serve", "--port", "http"], "--port must be a port from 0 to 65535, got 'http'"),
        (["serve", "--transport", "sim://localhost:99999"], "--transport 'sim://localhost:99999'"),
        (["serve", "--instance-id", "x" * 200], "--instance-id must be 1 to 128 characters"),
        (["--database-url", "notaurl", "status"], "--database-url is neither a postgresql://"),
        (["--home", "", "status"], "--home must be a folder path"),
    ],
    ids=[
        "log_level",
        "sim_port",
        "sim_stats_port",
        "serve_port",
        "transport",
        "instance_id",
        "database_url",
        "home",
    ],
)
def test_a_bad_option_exits_2_with_one_line_naming_it(
    tmp_path: Path, args: list[str], message: str
) -> None:
    env = {"WAMGR_HOME": str(tmp_path / "home")}
    result = CliRunner().invoke(main, args, prog_name="wamgr", env=env)

    _one_line_exit_2(result, message)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WAMGR_DATABASE_URL": "notaurl"}, "WAMGR_DATABASE_URL is neither a postgresql://"),
        ({"WAMGR_HTTP_PORT": "70000"}, "WAMGR_HTTP_PORT must be a port from 0 to 65535"),
        ({"WAMGR_TRANSPORT": "5"}, "WAMGR_TRANSPORT '5' is not one of"),
    ],
    ids=["database_url", "http_port", "transport"],
)
def test_a_bad_variable_exits_2_with_one_line_naming_it(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    env = {"WAMGR_HOME": str(tmp_path / "home"), **env}
    started = time.monotonic()
    result = CliRunner().invoke(main, ["serve"], prog_name="wamgr", env=env)

    _one_line_exit_2(result, message)
    assert time.monotonic() - started < 5.0  # refused, not retried for call_timeout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"home = 5\n", "home must be a folder path (text), got 5"),
        (b"instance_id = 5\n", "instance_id must be text, got 5"),
        (b"webhook_url = 5\n", "webhook_url must be a list of http:// or https:// URLs"),
        (b"transport = 5\n", "transport must be one of 'neonize', 'sim' or 'sim://HOST:PORT'"),
        (b"call_timeout = 1e308\n", "call_timeout must be at most 86400 s, got 1e+308"),
        (b"lease_ttl = 0.004\n", "lease_ttl must be at least 1 s, got 0.004"),
        (b'instance_id = "caf\xe9"\n', "is not UTF-8 text"),
    ],
    ids=["home", "instance_id", "webhook_url", "transport", "call_timeout", "ms", "not_utf8"],
)
def test_a_bad_config_file_exits_2_with_one_line_naming_file_and_key(
    wamgr: Wamgr, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "wamgr.toml"
    path.write_bytes(content)

    for result in (
        wamgr("--config", str(path), "status"),
        wamgr("status", env={"WAMGR_CONFIG": str(path)}),
    ):
        _one_line_exit_2(result, f"config file {path}")
        assert message in result.stderr


def test_missing_config_file_exits_2_naming_it(wamgr: Wamgr, tmp_path: Path) -> None:
    missing = tmp_path / "wamgr.toml"

    result = wamgr("--config", str(missing), "status")

    assert result.exit_code == 2, explain(result)
    assert result.stderr == f"wamgr: config file {missing} does not exist\n"


def test_serve_with_unknown_transport_exits_2_before_serving(wamgr: Wamgr) -> None:
    result = wamgr("serve", "--transport", "carrier-pigeon")

    assert result.exit_code == 2, explain(result)
    assert result.stderr.startswith("wamgr: --transport 'carrier-pigeon' is not one of")
    assert "serving" not in result.output


@pytest.mark.slow
def test_unreachable_database_exits_7_and_names_the_setting(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["--database-url", "postgresql://wamgr@127.0.0.1:1/wamgr", "status"],
        prog_name="wamgr",
        env={"WAMGR_CALL_TIMEOUT": "1", "WAMGR_HOME": str(tmp_path / "home")},
    )

    assert result.exit_code == 7, explain(result)
    assert result.stdout == ""
    last_line = result.stderr.splitlines()[-1]
    assert last_line.startswith("wamgr: database unavailable: ")
    assert "WAMGR_DATABASE_URL" in last_line


# --- help ----------------------------------------------------------------------------------


def _command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command of ``group`` (groups included) as the words that name it."""
    yield prefix
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from _command_paths(command, (*prefix, name))
        else:
            yield (*prefix, name)


def test_serve_help_names_every_transport() -> None:
    out = ok(CliRunner().invoke(main, ["serve", "--help"], prog_name="wamgr"))

    assert "sim://HOST:PORT" in " ".join(out.split())


@pytest.mark.parametrize(
    "path", list(_command_paths(main)), ids=lambda path: " ".join(("wamgr", *path))
)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_of_every_command_shows_an_example(path: tuple[str, ...], flag: str) -> None:
    result = CliRunner().invoke(main, [*path, flag], prog_name="wamgr")

    out = ok(result)
    assert out.startswith(f"Usage: {' '.join(('wamgr', *path))} ")
    assert "Example" in out
    example = out.split("Example", 1)[1]
    assert "wamgr " in example


# --- serve, as a real process --------------------------------------------------------------


@contextmanager
def _serving(database_url: str, tmp_path: Path, instance_id: str) -> Iterator[_Serve]:
    """``wamgr serve --transport sim`` in a subprocess; killed on the way out, whatever happens."""
    log_path = tmp_path / f"serve-{instance_id}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAMGR_")}
    env.update(
        WAMGR_CLAIM_INTERVAL="0.2",
        WAMGR_HOME=str(tmp_path / "home"),
        PYTHONUNBUFFERED="1",
    )
    argv = [
        sys.executable,
        "-m",
        "wamgr.cli",
        "--database-url",
        database_url,
        "serve",
        "--transport",
        "sim",
        "--instance-id",
        instance_id,
        "--port",
        "0",
    ]
    with log_path.open("w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        yield _Serve(proc, log_path)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=SERVE_DEADLINE_S)


class _Serve:
    """A running ``wamgr serve`` process and its combined output."""

    def __init__(self, proc: subprocess.Popen[bytes], log_path: Path):
        self.proc = proc
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_serving(self) -> None:
        """Wait until the process says it serves; fail if it exits or takes too long."""
        deadline = time.monotonic() + SERVE_DEADLINE_S
        while "wamgr serving as" not in self.log():
            assert self.proc.poll() is None, self.log()
            assert time.monotonic() < deadline, self.log()
            time.sleep(POLL_INTERVAL_S)

    def stop(self, signum: signal.Signals, within: float = SERVE_DEADLINE_S) -> int:
        """Send ``signum`` and return the exit code; fail if it does not exit ``within``."""
        self.proc.send_signal(signum)
        try:
            return self.proc.wait(timeout=within)
        except subprocess.TimeoutExpired:
            pytest.fail(f"serve did not exit within {within:g} s of {signum.name}:\n{self.log()}")


def _wait_for_statuses(
    wamgr: Wamgr,
    serve: _Serve,
    expected: dict[str, Callable[[dict[str, Any]], bool]],
    what: str,
) -> dict[str, dict[str, Any]]:
    """Poll ``wamgr status --json`` until every expected tenant matches; return the statuses."""
    deadline = time.monotonic() + SERVE_DEADLINE_S
    while True:
        statuses = stored_statuses(wamgr)
        if all(t in statuses and matches(statuses[t]) for t, matches in expected.items()):
            return statuses
        if serve.proc.poll() is not None:
            pytest.fail(f"serve exited ({serve.proc.returncode}) before {what}:\n{serve.log()}")
        if time.monotonic() > deadline:
            pytest.fail(
                f"not {what} within {SERVE_DEADLINE_S:g} s; last statuses:\n"
                f"{json.dumps(statuses, indent=2)}\nserve output:\n{serve.log()}"
            )
        time.sleep(POLL_INTERVAL_S)


def _connected_to(owner: str) -> Callable[[dict[str, Any]], bool]:
    return lambda s: s["state"] == "connected" and s["owner"] == owner


def _stopped(status: dict[str, Any]) -> bool:
    return status["state"] == "stopped"


def _leases(database_url: str) -> dict[str, str]:
    """Lease rows as ``{tenant_id: owner}``."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute("SELECT tenant_id, owner FROM wamgr_leases").fetchall()
    return dict(rows)


@pytest.mark.parametrize(
    "signum",
    [signal.SIGTERM, signal.SIGINT],
    ids=lambda s: s.name,
)
@pytest.mark.slow
def test_serve_runs_tenants_added_before_and_while_it_runs_and_stops_cleanly(
    wamgr: Wamgr, database_url: str, tmp_path: Path, signum: signal.Signals
) -> None:
    ok(wamgr("tenants", "add", "before"))

    with _serving(database_url, tmp_path, "srv") as serve:
        _wait_for_statuses(wamgr, serve, {"before": _connected_to("srv")}, "restored")
        ok(wamgr("tenants", "add", "during-1", "during-2"))

        statuses = _wait_for_statuses(
            wamgr,
            serve,
            {t: _connected_to("srv") for t in ("before", "during-1", "during-2")},
            "connected",
        )
        for status in statuses.values():
            assert status["jid"], status  # the simulator paired the new device
            assert status["attempt"] == 0
            assert status["last_error"] is None
        assert len({s["jid"] for s in statuses.values()}) == 3
        assert _leases(database_url) == dict.fromkeys(statuses, "srv")

        assert ok(wamgr("tenants", "remove", "during-1")) == "during-1: removed\n"
        statuses = _wait_for_statuses(wamgr, serve, {"during-1": _stopped}, "stopped")
        assert statuses["during-1"]["desired"] == "stopped"
        assert statuses["before"]["state"] == statuses["during-2"]["state"] == "connected"
        assert _leases(database_url) == {"before": "srv", "during-2": "srv"}

        ok(wamgr("tenants", "add", "during-1"))  # wanted again: connected again
        _wait_for_statuses(wamgr, serve, {"during-1": _connected_to("srv")}, "reconnected")

        assert serve.stop(signum) == 0
        log = serve.log()

    assert "wamgr serving as srv" in log
    assert "wamgr stopping" in log
    assert "Traceback" not in log
    assert _leases(database_url) == {}
    statuses = stored_statuses(wamgr)
    assert sorted(statuses) == ["before", "during-1", "during-2"]
    for status in statuses.values():
        assert status["state"] != "connected", status
        assert status["desired"] == "connected"  # stopping the service is not removing


@pytest.mark.slow
def test_serve_stopped_with_no_tenants_exits_0(
    wamgr: Wamgr, database_url: str, tmp_path: Path
) -> None:
    with _serving(database_url, tmp_path, "idle") as serve:
        serve.wait_serving()

        assert serve.stop(signal.SIGTERM) == 0

    assert "wamgr serving as idle (0 tenants known)" in serve.log()
    assert "garbage collector set for many tenants: thresholds 50000/20/100" in serve.log()
    assert stored_statuses(wamgr) == {}


@pytest.mark.slow
@pytest.mark.parametrize("trials", [1, PAUSE_TRIALS])
def test_serve_stops_within_its_budget_on_sigterm_after_a_pause(
    wamgr: Wamgr, database_url: str, tmp_path: Path, trials: int
) -> None:
    # Issue #12, defect 5: paused (SIGSTOP) and continued (SIGCONT), serve got SIGTERM on a
    # thread other than the main one, which slept in an untimed wait: 5 of 11 trials kept
    # running. A race, so a few trials here; bench/serve_signals.py runs 20.
    ok(wamgr("tenants", "add", "shop-1"))
    for trial in range(trials):
        with _serving(database_url, tmp_path, f"paused-{trial}") as serve:
            serve.wait_serving()
            serve.proc.send_signal(signal.SIGSTOP)
            serve.proc.send_signal(signal.SIGCONT)

            assert serve.stop(signal.SIGTERM, within=SERVE_STOP_BUDGET_S) == 0, serve.log()
        assert "wamgr stopping" in serve.log()
        assert "Traceback" not in serve.log()


@pytest.mark.slow
def test_a_second_signal_ends_serve_at_once_with_128_plus_the_first(
    database_url: str, tmp_path: Path
) -> None:
    with _serving(database_url, tmp_path, "impatient") as serve:
        serve.wait_serving()
        # Two different signals: a second SIGTERM still pending would merge with the first.
        serve.proc.send_signal(signal.SIGINT)  # the graceful stop takes far longer than ...

        code = serve.stop(signal.SIGTERM)  # ... this second signal takes to arrive

    # Pending together, the two may reach the process in either order.
    assert code in (FORCED_EXIT_BASE + signal.SIGINT, FORCED_EXIT_BASE + signal.SIGTERM)
    assert re.search(
        rf"ERROR .*SIG(INT|TERM) during the graceful stop .*exiting at once with code {code}",
        serve.log(),
    ), serve.log()
