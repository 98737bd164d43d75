"""``wamgr locks``: listing and clearing tenant leases and processing locks from the shell."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import datetime

import pytest
from click.testing import Result

from wamgr.store.db import Database
from wamgr.store.leases import LeaseStore
from wamgr.store.locks import ProcessingLocks

Wamgr = Callable[..., Result]


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url, max_size=2)
    database.open()
    yield database
    database.close()


@pytest.fixture
def leases(db: Database) -> LeaseStore:
    return LeaseStore(db)


@pytest.fixture
def locks(db: Database) -> ProcessingLocks:
    return ProcessingLocks(db, owner="app-1")


def _ok(result: Result) -> str:
    assert result.exit_code == 0, _explain(result)
    assert result.exception is None, _explain(result)
    return result.stdout


def _explain(result: Result) -> str:
    return (
        f"exit {result.exit_code}, exception {result.exception!r}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )


def _expire(seconds: float = 0.2) -> None:
    """Let the database clock pass a short ttl."""
    threading.Event().wait(seconds)


# --- leases --------------------------------------------------------------------------------


def test_locks_list_shows_tenant_leases(wamgr: Wamgr, leases: LeaseStore) -> None:
    assert _ok(wamgr("locks", "list")) == "no tenant leases\n"
    assert json.loads(_ok(wamgr("locks", "list", "--json"))) == []
    token = leases.acquire("shop-1", "gw-1", 30.0)
    leases.acquire("shop-2", "gw-2", 0.05)
    _expire()

    header, *lines = _ok(wamgr("locks", "list")).splitlines()
    listed = json.loads(_ok(wamgr("locks", "list", "--json")))

    assert header.split()[:3] == ["TENANT", "OWNER", "TOKEN"]
    assert [line.split()[:3] for line in lines] == [
        ["shop-1", "gw-1", str(token)],
        ["shop-2", "gw-2", str(token + 1)],
    ]
    assert lines[0].endswith("held") and lines[1].endswith("expired")
    assert [(e["tenant_id"], e["owner"], e["expired"]) for e in listed] == [
        ("shop-1", "gw-1", False),
        ("shop-2", "gw-2", True),
    ]
    assert listed[0]["token"] == token
    assert datetime.fromisoformat(listed[0]["expires_at"]) > datetime.fromisoformat(
        listed[1]["expires_at"]
    )


def test_locks_clear_tenant_removes_its_lease_and_warns_about_a_live_owner(
    wamgr: Wamgr, leases: LeaseStore
) -> None:
    token = leases.acquire("shop-1", "gw-1", 30.0)
    leases.acquire("shop-2", "gw-1", 30.0)

    result = wamgr("locks", "clear", "shop-1")

    assert _ok(result) == f"shop-1: lease cleared (owner gw-1, token {token})\n"
    assert "warning" in result.stderr and "fences itself" in result.stderr
    assert [lease.tenant_id for lease in leases.all()] == ["shop-2"]
    assert not leases.release("shop-1", token)  # the old owner's token is dead
    again = wamgr("locks", "clear", "shop-1")
    assert _ok(again) == "shop-1: no lease\n"
    assert again.stderr == ""


def test_locks_clear_expired_lease_does_not_warn(wamgr: Wamgr, leases: LeaseStore) -> None:
    leases.acquire("shop-1", "gw-1", 0.05)
    _expire()

    result = wamgr("locks", "clear", "shop-1")

    assert _ok(result).startswith("shop-1: lease cleared")
    assert result.stderr == ""


def test_locks_clear_all_removes_every_lease(wamgr: Wamgr, leases: LeaseStore) -> None:
    for tenant in ("a", "b", "c"):
        leases.acquire(tenant, "gw-1", 30.0)

    result = wamgr("locks", "clear", "--all")

    assert _ok(result) == "cleared 3 tenant leases\n"
    assert "a, b, c" in result.stderr and "fences itself" in result.stderr
    assert leases.all() == []
    assert _ok(wamgr("locks", "clear", "--all")) == "cleared 0 tenant leases\n"


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("a", "--all"),
        ("--processing",),
        ("--processing", "--all"),
        ("--processing", "k", "--all"),
    ],
    ids=lambda args: " ".join(args) or "nothing",
)
def test_locks_clear_needs_exactly_one_target(wamgr: Wamgr, args: tuple[str, ...]) -> None:
    result = wamgr("locks", "clear", *args)

    assert result.exit_code == 2, _explain(result)
    assert "Usage: wamgr locks clear" in result.stderr


def test_locks_clear_refuses_an_invalid_tenant_id(wamgr: Wamgr) -> None:
    result = wamgr("locks", "clear", "bad id")

    assert result.exit_code == 2, _explain(result)
    assert "invalid tenant id 'bad id'" in result.stderr


# --- processing locks ----------------------------------------------------------------------


def test_locks_list_processing_shows_key_token_expiry_and_state(
    wamgr: Wamgr, locks: ProcessingLocks
) -> None:
    assert _ok(wamgr("locks", "list", "--processing")) == "no processing locks\n"
    assert json.loads(_ok(wamgr("locks", "list", "--processing", "--json"))) == []
    held = locks.claim("shop-1:15550001111", ttl=30)
    stale = locks.claim("shop-1:15550002222", ttl=0.05)
    _expire()

    header, *lines = _ok(wamgr("locks", "list", "--processing")).splitlines()
    listed = json.loads(_ok(wamgr("locks", "list", "--processing", "--json")))

    assert header.split()[:3] == ["KEY", "TOKEN", "OWNER"]
    assert [line.split()[:3] for line in lines] == [
        ["shop-1:15550001111", str(held.token), "app-1"],
        ["shop-1:15550002222", str(stale.token), "app-1"],
    ]
    assert lines[0].endswith("held") and lines[1].endswith("expired")
    assert [(e["key"], e["token"], e["expired"]) for e in listed] == [
        ("shop-1:15550001111", held.token, False),
        ("shop-1:15550002222", stale.token, True),
    ]
    assert datetime.fromisoformat(listed[0]["expires_at"]) == held.expires_at
    assert set(listed[0]) == {"key", "token", "owner", "acquired_at", "expires_at", "expired"}


def test_locks_list_processing_prints_an_unprintable_key_on_one_line(
    wamgr: Wamgr, locks: ProcessingLocks
) -> None:
    locks.claim("a\nb", ttl=30)

    lines = _ok(wamgr("locks", "list", "--processing")).splitlines()

    assert len(lines) == 2
    assert lines[1].startswith("'a\\nb'")


def test_locks_clear_processing_removes_one_lock_and_fences_its_holder(
    wamgr: Wamgr, locks: ProcessingLocks
) -> None:
    claim = locks.claim("shop-1:15550001111", ttl=30)
    other = locks.claim("shop-1:15550002222", ttl=30)

    result = wamgr("locks", "clear", "--processing", "shop-1:15550001111")

    assert _ok(result) == (
        f"processing lock shop-1:15550001111 cleared (token {claim.token}, owner app-1)\n"
    )
    assert "warning" in result.stderr and "release and extend will return False" in result.stderr
    assert not claim.release() and not claim.extend(30)
    assert [row.key for row in locks.all()] == ["shop-1:15550002222"]
    again = wamgr("locks", "clear", "--processing", "shop-1:15550001111")
    assert _ok(again) == "no processing lock shop-1:15550001111\n"
    assert other.release()


def test_locks_clear_processing_of_an_expired_lock_does_not_warn(
    wamgr: Wamgr, locks: ProcessingLocks
) -> None:
    locks.claim("k", ttl=0.05)
    _expire()

    result = wamgr("locks", "clear", "--processing", "k")

    assert _ok(result).startswith("processing lock k cleared")
    assert result.stderr == ""


def test_locks_clear_processing_refuses_an_invalid_key(wamgr: Wamgr) -> None:
    result = wamgr("locks", "clear", "--processing", "x" * 256)

    assert result.exit_code == 2, _explain(result)
    assert "invalid processing-lock key" in result.stderr
    assert "1 to 255 characters" in result.stderr
