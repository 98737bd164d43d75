"""The ``wamgr`` command as a user meets it: what it prints and the exit codes it returns.

The commands that work on the database run in-process through click's ``CliRunner``;
``wamgr serve`` runs as a real subprocess on the simulator and is stopped with SIGTERM or
SIGINT, as an operator (or systemd) would stop it.
"""

from __future__ import annotations

import json
import os
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

#: Every field of a TenantStatus, plus ``desired``: the keys of one tenant in JSON output.
STATUS_KEYS = {
    "tenant_id",
    "state",
    "jid",
    "owner",
    "attempt",
    "next_retry_at",
    "last_error",
    "updated_at",
    "desired",
    "lease_expires_at",
}

#: Seconds a ``serve`` subprocess gets to reach a state, and to exit after a signal.
SERVE_DEADLINE_S = 20.0
#: Seconds between two status polls of a ``serve`` subprocess (another process: no event).
POLL_INTERVAL_S = 0.1

Wamgr = Callable[..., Result]


def _ok(result: Result) -> str:
    """The stdout of a run that must have succeeded."""
    assert result.exit_code == 0, _explain(result)
    assert result.exception is None, _explain(result)
    return result.stdout


def _explain(result: Result) -> str:
    return (
        f"exit {result.exit_code}, exception {result.exception!r}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )


def _statuses(wamgr: Wamgr) -> dict[str, dict[str, Any]]:
    """``wamgr status --json``, by tenant id."""
    listed = json.loads(_ok(wamgr("status", "--json")))
    assert isinstance(listed, list)
    return {entry["tenant_id"]: entry for entry in listed}


def _table(stdout: str) -> tuple[list[str], dict[str, list[str]]]:
    """The header and the rows (by tenant id) of the ``wamgr status`` table."""
    header, *lines = stdout.splitlines()
    rows = {line.split()[0]: line.split() for line in lines}
    return header.split(), rows


# --- tenants add / list --------------------------------------------------------------------


def test_tenants_add_says_added_and_then_already_wanted(wamgr: Wamgr) -> None:
    assert _ok(wamgr("tenants", "add", "a", "b")) == "a: added\nb: added\n"

    assert _ok(wamgr("tenants", "add", "a")) == "a: already wanted connected\n"
    assert _ok(wamgr("tenants", "add", "b", "c")) == "b: already wanted connected\nc: added\n"


def test_tenants_list_shows_desired_and_state(wamgr: Wamgr) -> None:
    _ok(wamgr("tenants", "add", "b", "a"))

    lines = _ok(wamgr("tenants", "list")).splitlines()

    assert [line.split("\t") for line in lines] == [
        ["a", "connected", "stopped"],
        ["b", "connected", "stopped"],
    ]


def test_tenants_list_json_is_a_list_of_statuses(wamgr: Wamgr) -> None:
    assert json.loads(_ok(wamgr("tenants", "list", "--json"))) == []
    _ok(wamgr("tenants", "add", "b", "a"))

    listed = json.loads(_ok(wamgr("tenants", "list", "--json")))

    assert [entry["tenant_id"] for entry in listed] == ["a", "b"]
    for entry in listed:
        assert set(entry) == STATUS_KEYS
        assert entry["desired"] == "connected"
        assert entry["state"] == "stopped"


# --- status --------------------------------------------------------------------------------


def test_status_table_shows_every_tenant(wamgr: Wamgr) -> None:
    _ok(wamgr("tenants", "add", "shop-1", "shop-2"))

    header, rows = _table(_ok(wamgr("status")))

    assert header[:4] == ["TENANT", "DESIRED", "STATE", "OWNER"]
    assert "ATTEMPT" in header and "LEASE" in header
    assert list(rows) == ["shop-1", "shop-2"]
    for row in rows.values():
        assert row[1:6] == ["connected", "stopped", "-", "-", "0"]


def test_status_table_of_one_tenant(wamgr: Wamgr) -> None:
    _ok(wamgr("tenants", "add", "shop-1", "shop-2"))

    _, rows = _table(_ok(wamgr("status", "shop-2")))

    assert list(rows) == ["shop-2"]


def test_status_without_tenants_says_how_to_add_one(wamgr: Wamgr) -> None:
    out = _ok(wamgr("status"))

    assert out.startswith("no tenants")
    assert "wamgr tenants add" in out
    assert json.loads(_ok(wamgr("status", "--json"))) == []


def test_status_of_one_tenant_as_json_is_one_object_with_every_field(wamgr: Wamgr) -> None:
    _ok(wamgr("tenants", "add", "a", "b"))

    shown = json.loads(_ok(wamgr("status", "a", "--json")))

    assert isinstance(shown, dict)
    assert set(shown) == STATUS_KEYS
    assert shown["tenant_id"] == "a"
    assert shown["state"] == "stopped"
    assert shown["desired"] == "connected"
    assert shown["jid"] is None
    assert shown["owner"] is None
    assert shown["attempt"] == 0
    assert shown["next_retry_at"] is None
    assert shown["last_error"] is None
    assert shown["lease_expires_at"] is None
    assert isinstance(shown["updated_at"], str)
    assert "T" in shown["updated_at"]  # ISO 8601


def test_status_json_without_tenant_is_a_list(wamgr: Wamgr) -> None:
    _ok(wamgr("tenants", "add", "b", "a"))

    listed = json.loads(_ok(wamgr("status", "--json")))

    assert isinstance(listed, list)
    assert [entry["tenant_id"] for entry in listed] == ["a", "b"]
    assert all(set(entry) == STATUS_KEYS for entry in listed)


@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
def test_status_of_unknown_tenant_fails_with_one_line(wamgr: Wamgr, as_json: bool) -> None:
    _ok(wamgr("tenants", "add", "a"))

    result = wamgr("status", "unknown", *(["--json"] if as_json else []))

    assert result.exit_code == 3, _explain(result)
    assert result.stdout == ""
    assert result.stderr.startswith("wamgr: unknown tenant 'unknown'")
    assert result.stderr.count("\n") == 1
    assert "wamgr tenants add unknown" in result.stderr


# --- invalid tenant ids --------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [["tenants", "add"], ["tenants", "remove"], ["tenants", "remove", "--purge"], ["status"]],
    ids=" ".join,
)
@pytest.mark.parametrize("tenant_id", ["bad id", "x" * 65, "", "a/b", "ü"], ids=repr)
def test_invalid_tenant_id_exits_2_saying_what_is_allowed(
    wamgr: Wamgr, command: list[str], tenant_id: str
) -> None:
    result = wamgr(*command, tenant_id)

    assert result.exit_code == 2, _explain(result)
    assert result.stdout == ""
    assert f"invalid tenant id {tenant_id!r}" in result.stderr
    assert "1 to 64 characters" in result.stderr
    assert "a letter, a digit, '_', '.' or '-'" in result.stderr
    assert "Traceback" not in result.stderr


def test_one_invalid_tenant_id_adds_none_of_them(wamgr: Wamgr) -> None:
    result = wamgr("tenants", "add", "good", "bad id")

    assert result.exit_code == 2, _explain(result)
    assert _statuses(wamgr) == {}


def test_longest_allowed_tenant_id_is_accepted(wamgr: Wamgr) -> None:
    longest = "A-z_0." + "x" * 58

    assert _ok(wamgr("tenants", "add", longest)) == f"{longest}: added\n"
    assert json.loads(_ok(wamgr("status", longest, "--json")))["tenant_id"] == longest


# --- tenants remove ------------------------------------------------------------------------


def test_tenants_remove_wants_the_tenant_stopped_and_keeps_it(wamgr: Wamgr) -> None:
    _ok(wamgr("tenants", "add", "a", "b"))

    assert _ok(wamgr("tenants", "remove", "a")) == "a: removed\n"

    statuses = _statuses(wamgr)
    assert statuses["a"]["desired"] == "stopped"
    assert statuses["a"]["state"] == "stopped"
    assert statuses["b"]["desired"] == "connected"
    assert _ok(wamgr("tenants", "list")).splitlines()[0].split("\t") == [
        "a",
        "stopped",
        "stopped",
    ]


def test_tenants_remove_of_unknown_tenant_says_unknown(wamgr: Wamgr) -> None:
    assert _ok(wamgr("tenants", "remove", "ghost")) == "ghost: unknown\n"
    assert _statuses(wamgr) == {}


def test_tenants_remove_purge_forgets_the_tenant(wamgr: Wamgr) -> None:
    _ok(wamgr("tenants", "add", "a", "b"))

    assert _ok(wamgr("tenants", "remove", "--purge", "b")) == "b: purged\n"

    assert list(_statuses(wamgr)) == ["a"]
    assert wamgr("status", "b").exit_code == 3
    assert _ok(wamgr("tenants", "remove", "--purge", "b")) == "b: unknown\n"


def test_purged_tenant_can_be_added_again(wamgr: Wamgr) -> None:
    _ok(wamgr("tenants", "add", "a"))
    _ok(wamgr("tenants", "remove", "--purge", "a"))

    assert _ok(wamgr("tenants", "add", "a")) == "a: added\n"


# --- db migrate ----------------------------------------------------------------------------


def test_db_migrate_lists_migrations_and_says_up_to_date(wamgr: Wamgr) -> None:
    for _ in range(2):  # applying again changes nothing
        lines = _ok(wamgr("db", "migrate")).splitlines()

        assert lines[0].startswith("0001  0001_initial.sql  applied ")
        assert lines[-1] == "database is up to date"


# --- configuration and database errors -----------------------------------------------------


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WAMGR_RENEW_INTERVAL": "25"}, "wamgr: renew_interval (25 s) must be shorter than"),
        ({"WAMGR_RENEW_DEADLINE": "40"}, "wamgr: renew_deadline (40 s) must be shorter than"),
        ({"WAMGR_CLAIM_INTERVAL": "0"}, "wamgr: claim_interval_s must be a positive number"),
        ({"WAMGR_LEASE_TTL": "soon"}, "wamgr: WAMGR_LEASE_TTL: bad value 'soon'"),
    ],
    ids=["renew_interval", "renew_deadline", "claim_interval", "not_a_number"],
)
def test_inconsistent_settings_exit_2_with_one_line(
    wamgr: Wamgr, env: dict[str, str], message: str
) -> None:
    result = wamgr("status", env=env)

    assert result.exit_code == 2, _explain(result)
    assert result.stdout == ""
    assert result.stderr.startswith(message)
    assert result.stderr.count("\n") == 1


def test_missing_config_file_exits_2_naming_it(wamgr: Wamgr, tmp_path: Path) -> None:
    missing = tmp_path / "wamgr.toml"

    result = wamgr("--config", str(missing), "status")

    assert result.exit_code == 2, _explain(result)
    assert result.stderr == f"wamgr: config file {missing} does not exist\n"


def test_serve_with_unknown_transport_exits_2_before_serving(wamgr: Wamgr) -> None:
    result = wamgr("serve", "--transport", "carrier-pigeon")

    assert result.exit_code == 2, _explain(result)
    assert result.stderr.startswith("wamgr: transport 'carrier-pigeon' is not one of")
    assert "serving" not in result.output


def test_unreachable_database_exits_7_and_names_the_setting(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["--database-url", "postgresql://wamgr@127.0.0.1:1/wamgr", "status"],
        prog_name="wamgr",
        env={"WAMGR_CALL_TIMEOUT": "1", "WAMGR_HOME": str(tmp_path / "home")},
    )

    assert result.exit_code == 7, _explain(result)
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


@pytest.mark.parametrize(
    "path", list(_command_paths(main)), ids=lambda path: " ".join(("wamgr", *path))
)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_of_every_command_shows_an_example(path: tuple[str, ...], flag: str) -> None:
    result = CliRunner().invoke(main, [*path, flag], prog_name="wamgr")

    out = _ok(result)
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

    def stop(self, signum: signal.Signals) -> int:
        """Send ``signum`` and return the exit code; fail if it does not exit in time."""
        self.proc.send_signal(signum)
        try:
            return self.proc.wait(timeout=SERVE_DEADLINE_S)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"serve did not exit within {SERVE_DEADLINE_S:g} s of {signum.name}:\n{self.log()}"
            )


def _wait_for_statuses(
    wamgr: Wamgr,
    serve: _Serve,
    expected: dict[str, Callable[[dict[str, Any]], bool]],
    what: str,
) -> dict[str, dict[str, Any]]:
    """Poll ``wamgr status --json`` until every expected tenant matches; return the statuses."""
    deadline = time.monotonic() + SERVE_DEADLINE_S
    while True:
        statuses = _statuses(wamgr)
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


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_serve_runs_tenants_added_before_and_while_it_runs_and_stops_cleanly(
    wamgr: Wamgr, database_url: str, tmp_path: Path, signum: signal.Signals
) -> None:
    _ok(wamgr("tenants", "add", "before"))

    with _serving(database_url, tmp_path, "srv") as serve:
        _wait_for_statuses(wamgr, serve, {"before": _connected_to("srv")}, "restored")
        _ok(wamgr("tenants", "add", "during-1", "during-2"))

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

        assert _ok(wamgr("tenants", "remove", "during-1")) == "during-1: removed\n"
        statuses = _wait_for_statuses(wamgr, serve, {"during-1": _stopped}, "stopped")
        assert statuses["during-1"]["desired"] == "stopped"
        assert statuses["before"]["state"] == statuses["during-2"]["state"] == "connected"
        assert _leases(database_url) == {"before": "srv", "during-2": "srv"}

        _ok(wamgr("tenants", "add", "during-1"))  # wanted again: connected again
        _wait_for_statuses(wamgr, serve, {"during-1": _connected_to("srv")}, "reconnected")

        assert serve.stop(signum) == 0
        log = serve.log()

    assert "wamgr serving as srv" in log
    assert "wamgr stopping" in log
    assert "Traceback" not in log
    assert _leases(database_url) == {}
    statuses = _statuses(wamgr)
    assert sorted(statuses) == ["before", "during-1", "during-2"]
    for status in statuses.values():
        assert status["state"] != "connected", status
        assert status["desired"] == "connected"  # stopping the service is not removing


def test_serve_stopped_with_no_tenants_exits_0(
    wamgr: Wamgr, database_url: str, tmp_path: Path
) -> None:
    with _serving(database_url, tmp_path, "idle") as serve:
        deadline = time.monotonic() + SERVE_DEADLINE_S
        while "wamgr serving as idle" not in serve.log():
            assert serve.proc.poll() is None, serve.log()
            assert time.monotonic() < deadline, serve.log()
            time.sleep(POLL_INTERVAL_S)

        assert serve.stop(signal.SIGTERM) == 0

    assert "(0 tenants known)" in serve.log()
    assert _statuses(wamgr) == {}
