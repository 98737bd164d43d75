"""``wamgr db``, ``wamgr webhooks`` and ``wamgr locks``: maintenance from the shell."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import pytest

from wamgr.store.db import Database
from wamgr.store.leases import LeaseStore
from wamgr.store.locks import ProcessingLocks
from wamgr.store.outbox import Outbox
from wamgr.store.tenants import TenantStore
from wamgr.transport.base import MessageReceived
from wamgr.webhooks.events import message_event

from .conftest import Wamgr, explain, ok


@pytest.fixture
def leases(db: Database) -> LeaseStore:
    return LeaseStore(db)


@pytest.fixture
def locks(db: Database) -> ProcessingLocks:
    return ProcessingLocks(db, owner="app-1")


# --- db migrate ----------------------------------------------------------------------------


def test_db_migrate_lists_migrations_and_says_up_to_date(wamgr: Wamgr) -> None:
    for _ in range(2):  # applying again changes nothing
        lines = ok(wamgr("db", "migrate")).splitlines()

        assert lines[0].startswith("0001  0001_initial.sql  applied ")
        assert lines[-1] == "database is up to date"


# --- webhooks ------------------------------------------------------------------------------


HOOK_A = "https://a.example.com/hooks"
HOOK_B = "https://b.example.com/hooks"


@pytest.fixture
def outbox(db: Database) -> Outbox:
    """Deliveries to HOOK_A: one pending, one delivered, one given up; HOOK_B disabled with
    its only delivery given up."""
    box = Outbox(db)
    for n in range(3):
        event = message_event(
            "shop-1", MessageReceived(0, f"m{n}", "15550001111@s.whatsapp.net", "hi")
        )
        assert box.record_inbound("shop-1", f"m{n}", event, [HOOK_A, HOOK_B])
    a_rows = box.rows(HOOK_A)
    box.delivered(a_rows[1]["id"], 200)
    box.failed(a_rows[2]["id"], 500, "server error", retry_in_s=None)
    box.delivered(box.rows(HOOK_B)[0]["id"], 200)
    box.disable_endpoint(HOOK_B, "410 Gone")
    return box


def test_webhooks_status_without_deliveries_says_how_to_set_one_up(wamgr: Wamgr) -> None:
    assert ok(wamgr("webhooks", "status")).startswith("no webhook deliveries (set WAMGR_WEBHOOK")
    assert json.loads(ok(wamgr("webhooks", "status", "--json"))) == []


def test_webhooks_status_counts_deliveries_per_endpoint(wamgr: Wamgr, outbox: Outbox) -> None:
    header, *lines = ok(wamgr("webhooks", "status")).splitlines()
    listed = json.loads(ok(wamgr("webhooks", "status", "--json")))

    assert header.split()[:3] == ["ENDPOINT", "PENDING", "DELIVERED"]
    assert [(e["endpoint"], e["pending"], e["delivered"], e["given_up"]) for e in listed] == [
        (HOOK_A, 1, 1, 1),
        (HOOK_B, 0, 1, 2),  # disabling gave up what was pending
    ]
    assert listed[0]["disabled_at"] is None
    disabled = datetime.fromisoformat(listed[1]["disabled_at"]).astimezone(UTC)
    assert lines[0].split() == [HOOK_A, "1", "1", "1", "-"]
    assert lines[1].split() == [
        HOOK_B,
        "0",
        "1",
        "2",
        *f"{disabled:%Y-%m-%d %H:%M:%S.%f}"[:-3].split(),
    ]


def test_webhooks_enable_re_enables_a_disabled_endpoint_once(wamgr: Wamgr, outbox: Outbox) -> None:
    assert ok(wamgr("webhooks", "enable", HOOK_B)) == f"{HOOK_B}: enabled\n"

    assert outbox.disabled_endpoints() == {}
    assert ok(wamgr("webhooks", "enable", HOOK_B)) == f"{HOOK_B}: was not disabled\n"
    assert ok(wamgr("webhooks", "enable", HOOK_A)) == f"{HOOK_A}: was not disabled\n"


# --- locks ---------------------------------------------------------------------------------


def _expire(seconds: float = 0.2) -> None:
    """Let the database clock pass a short ttl."""
    threading.Event().wait(seconds)


# --- leases --------------------------------------------------------------------------------


@pytest.mark.slow
def test_locks_list_shows_tenant_leases(wamgr: Wamgr, leases: LeaseStore) -> None:
    assert ok(wamgr("locks", "list")) == "no tenant leases\n"
    assert json.loads(ok(wamgr("locks", "list", "--json"))) == []
    token = leases.acquire("shop-1", "gw-1", 30.0)
    leases.acquire("shop-2", "gw-2", 0.05)
    _expire()

    header, *lines = ok(wamgr("locks", "list")).splitlines()
    listed = json.loads(ok(wamgr("locks", "list", "--json")))

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

    assert ok(result) == f"shop-1: lease cleared (owner gw-1, token {token})\n"
    assert "warning" in result.stderr and "fences itself" in result.stderr
    assert [lease.tenant_id for lease in leases.all()] == ["shop-2"]
    assert not leases.release("shop-1", token)  # the old owner's token is dead
    again = wamgr("locks", "clear", "shop-1")
    assert ok(again) == "shop-1: no lease\n"
    assert again.stderr == ""


@pytest.mark.slow
def test_locks_clear_expired_lease_does_not_warn(wamgr: Wamgr, leases: LeaseStore) -> None:
    leases.acquire("shop-1", "gw-1", 0.05)
    _expire()

    result = wamgr("locks", "clear", "shop-1")

    assert ok(result).startswith("shop-1: lease cleared")
    assert result.stderr == ""


def test_locks_clear_all_removes_every_lease(wamgr: Wamgr, leases: LeaseStore) -> None:
    for tenant in ("a", "b", "c"):
        leases.acquire(tenant, "gw-1", 30.0)

    result = wamgr("locks", "clear", "--all")

    assert ok(result) == "cleared 3 tenant leases\n"
    assert "a, b, c" in result.stderr and "fences itself" in result.stderr
    assert leases.all() == []
    assert ok(wamgr("locks", "clear", "--all")) == "cleared 0 tenant leases\n"


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

    assert result.exit_code == 2, explain(result)
    assert "Usage: wamgr locks clear" in result.stderr


def test_locks_clear_refuses_an_invalid_tenant_id(wamgr: Wamgr) -> None:
    result = wamgr("locks", "clear", "bad id")

    assert result.exit_code == 2, explain(result)
    assert "invalid tenant id 'bad id'" in result.stderr


# --- processing locks ----------------------------------------------------------------------


@pytest.mark.slow
def test_locks_list_processing_shows_key_token_expiry_and_state(
    wamgr: Wamgr, locks: ProcessingLocks
) -> None:
    assert ok(wamgr("locks", "list", "--processing")) == "no processing locks\n"
    assert json.loads(ok(wamgr("locks", "list", "--processing", "--json"))) == []
    held = locks.claim("shop-1:15550001111", ttl=30)
    stale = locks.claim("shop-1:15550002222", ttl=0.05)
    _expire()

    header, *lines = ok(wamgr("locks", "list", "--processing")).splitlines()
    listed = json.loads(ok(wamgr("locks", "list", "--processing", "--json")))

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

    lines = ok(wamgr("locks", "list", "--processing")).splitlines()

    assert len(lines) == 2
    assert lines[1].startswith("'a\\nb'")


def test_locks_clear_processing_removes_one_lock_and_fences_its_holder(
    wamgr: Wamgr, locks: ProcessingLocks
) -> None:
    claim = locks.claim("shop-1:15550001111", ttl=30)
    other = locks.claim("shop-1:15550002222", ttl=30)

    result = wamgr("locks", "clear", "--processing", "shop-1:15550001111")

    assert ok(result) == (
        f"processing lock shop-1:15550001111 cleared (token {claim.token}, owner app-1)\n"
    )
    assert "warning" in result.stderr and "release and extend will return False" in result.stderr
    assert not claim.release() and not claim.extend(30)
    assert [row.key for row in locks.all()] == ["shop-1:15550002222"]
    again = wamgr("locks", "clear", "--processing", "shop-1:15550001111")
    assert ok(again) == "no processing lock shop-1:15550001111\n"
    assert other.release()


def test_locks_clear_processing_of_an_expired_lock_does_not_warn(
    wamgr: Wamgr, locks: ProcessingLocks
) -> None:
    locks.claim("k", ttl=0.05)
    _expire()

    result = wamgr("locks", "clear", "--processing", "k")

    assert ok(result).startswith("processing lock k cleared")
    assert result.stderr == ""


def test_locks_clear_processing_refuses_an_invalid_key(wamgr: Wamgr) -> None:
    result = wamgr("locks", "clear", "--processing", "x" * 256)

    assert result.exit_code == 2, explain(result)
    assert "invalid processing-lock key" in result.stderr
    assert "1 to 255 characters" in result.stderr


# --- webhooks dead / retry ------------------------------------------------------------------


def _dead(database_url: str, count: int) -> list[int]:
    """``count`` dead deliveries of tenant shop-1 to an endpoint with a token in its URL."""
    db = Database(database_url)
    db.open()
    try:
        TenantStore(db).add("shop-1")
        outbox = Outbox(db)
        for n in range(count):
            event = message_event("shop-1", MessageReceived(0, f"d{n}", "1555", "x"))
            outbox.record_inbound("shop-1", f"d{n}", event, ["https://crm.example/h?token=sekrit"])
        for row in outbox.rows():
            outbox.failed(row["id"], 503, "HTTP 503", None)
        return [row["id"] for row in outbox.rows()]
    finally:
        db.close()


@pytest.mark.slow
def test_webhooks_dead_lists_and_retry_sends_again(wamgr, database_url) -> None:
    first, second = _dead(database_url, 2)

    table = ok(wamgr("webhooks", "dead"))
    listed = json.loads(ok(wamgr("webhooks", "dead", "--tenant", "shop-1", "--json")))
    one = ok(wamgr("webhooks", "retry", str(first)))
    again = wamgr("webhooks", "retry", str(first))
    rest = ok(wamgr("webhooks", "retry", "--all"))
    neither = wamgr("webhooks", "retry")

    assert "message.received" in table and "HTTP 503" in table and "sekrit" not in table
    assert [d["id"] for d in listed] == [second, first]
    assert listed[0]["endpoint"] == "https://crm.example/h"
    assert one == f"retried 1 deliveries: [{first}]\n"
    assert again.exit_code == 3 and "no dead webhook delivery" in again.output, explain(again)
    assert rest == f"retried 1 deliveries: [{second}]\n"
    assert neither.exit_code == 2, explain(neither)
    assert ok(wamgr("webhooks", "dead")) == "no dead webhook deliveries\n"
