"""``wamgr status``, and ``connect``/``reconnect``/``disconnect``/``logout`` with no instance
running (tests/api/test_remote_commands.py has them reach a running one)."""

from __future__ import annotations

import json

import pytest

from wamgr.status import Desired
from wamgr.store.db import Database
from wamgr.store.leases import LeaseStore
from wamgr.store.tenants import TenantStore

from .conftest import STATUS_JSON_KEYS, Wamgr, explain, ok


def _table(stdout: str) -> tuple[list[str], dict[str, list[str]]]:
    """The header and the rows (by tenant id) of the ``wamgr status`` table."""
    header, *lines = stdout.splitlines()
    rows = {line.split()[0]: line.split() for line in lines}
    return header.split(), rows


# --- status --------------------------------------------------------------------------------


def test_status_table_shows_every_tenant(wamgr: Wamgr) -> None:
    ok(wamgr("tenants", "add", "shop-1", "shop-2"))

    header, rows = _table(ok(wamgr("status")))

    assert header[:4] == ["TENANT", "DESIRED", "STATE", "OWNER"]
    assert "ATTEMPT" in header and "LEASE" in header
    assert list(rows) == ["shop-1", "shop-2"]
    for row in rows.values():
        assert row[1:6] == ["connected", "stopped", "-", "-", "0"]


def test_status_table_of_one_tenant(wamgr: Wamgr) -> None:
    ok(wamgr("tenants", "add", "shop-1", "shop-2"))

    _, rows = _table(ok(wamgr("status", "shop-2")))

    assert list(rows) == ["shop-2"]


def test_status_without_tenants_says_how_to_add_one(wamgr: Wamgr) -> None:
    out = ok(wamgr("status"))

    assert out.startswith("no tenants")
    assert "wamgr tenants add" in out
    assert json.loads(ok(wamgr("status", "--json"))) == []


def test_status_of_one_tenant_as_json_is_one_object_with_every_field(wamgr: Wamgr) -> None:
    ok(wamgr("tenants", "add", "a", "b"))

    shown = json.loads(ok(wamgr("status", "a", "--json")))

    assert isinstance(shown, dict)
    assert set(shown) == STATUS_JSON_KEYS
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
    ok(wamgr("tenants", "add", "b", "a"))

    listed = json.loads(ok(wamgr("status", "--json")))

    assert isinstance(listed, list)
    assert [entry["tenant_id"] for entry in listed] == ["a", "b"]
    assert all(set(entry) == STATUS_JSON_KEYS for entry in listed)


@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
def test_status_of_unknown_tenant_fails_with_one_line(wamgr: Wamgr, as_json: bool) -> None:
    ok(wamgr("tenants", "add", "a"))

    result = wamgr("status", "unknown", *(["--json"] if as_json else []))

    assert result.exit_code == 3, explain(result)
    assert result.stdout == ""
    assert result.stderr.startswith("wamgr: unknown tenant 'unknown'")
    assert result.stderr.count("\n") == 1
    assert "wamgr tenants add unknown" in result.stderr


# --- connect, reconnect, disconnect, logout with no instance running ----------------------


def test_connect_wants_the_tenant_connected_and_asks_any_instance(
    wamgr: Wamgr, db: Database
) -> None:
    assert ok(wamgr("connect", "new-1")) == (
        "new-1: connect sent to any running instance (none holds it)\n"
    )

    record = TenantStore(db).get("new-1")
    assert record is not None and record.desired is Desired.CONNECTED


def test_commands_go_to_the_instance_holding_the_lease(wamgr: Wamgr, db: Database) -> None:
    ok(wamgr("tenants", "add", "t1"))
    LeaseStore(db).acquire("t1", "gw-7", 60.0)

    assert ok(wamgr("reconnect", "t1")) == "t1: reconnect sent to gw-7, which holds it\n"
    assert TenantStore(db).get("t1").desired is Desired.CONNECTED
    assert ok(wamgr("disconnect", "t1")) == "t1: disconnect sent to gw-7, which holds it\n"
    assert TenantStore(db).get("t1").desired is Desired.STOPPED


@pytest.mark.parametrize(
    ("command", "said"),
    [
        ("disconnect", "t1: stopped (no instance runs it)\n"),
        ("logout", "t1: stopped (no instance runs it; nothing to log out)\n"),
    ],
)
def test_stopping_a_tenant_nobody_runs_only_wants_it_stopped(
    wamgr: Wamgr, db: Database, command: str, said: str
) -> None:
    ok(wamgr("tenants", "add", "t1"))

    assert ok(wamgr(command, "t1")) == said

    assert TenantStore(db).get("t1").desired is Desired.STOPPED


@pytest.mark.parametrize("command", ["reconnect", "disconnect", "logout"])
def test_a_command_naming_an_unknown_tenant_changes_none(
    wamgr: Wamgr, db: Database, command: str
) -> None:
    ok(wamgr("tenants", "add", "t1"))

    result = wamgr(command, "t1", "ghost")

    assert result.exit_code == 3, explain(result)
    assert result.stdout == ""
    assert result.stderr.startswith("wamgr: unknown tenant 'ghost'")
    assert TenantStore(db).get("t1").desired is Desired.CONNECTED
    assert TenantStore(db).get("ghost") is None
