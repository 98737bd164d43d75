"""The dashboard's queries: the fleet filtered, searched, counted and paged in the database;
a tenant's history and deliveries newest first; live instances with their leases and
capacity; webhook endpoints with their queue and failures."""

from __future__ import annotations

import pytest

from wamgr.status import TenantState, TenantStatus
from wamgr.store.dashboard import DashboardStore
from wamgr.store.db import Database
from wamgr.store.instances import InstanceStore
from wamgr.store.leases import LeaseStore
from wamgr.store.outbox import Outbox
from wamgr.store.tenants import TenantStore

HOOK = "http://127.0.0.1:9/hook"


@pytest.fixture
def board(db: Database) -> DashboardStore:
    return DashboardStore(db)


def _fleet(db: Database, states: dict[str, str]) -> None:
    with db.connection() as conn:
        conn.execute(
            "INSERT INTO wamgr_tenants (tenant_id, state)"
            " SELECT * FROM unnest(%s::text[], %s::text[])",
            (list(states), list(states.values())),
        )


def test_the_fleet_is_paged_filtered_searched_and_counted(db, board) -> None:
    states = {f"shop-{n:03d}": "backoff" if n % 3 == 0 else "stopped" for n in range(120)}
    states["shop_x"] = "failed"
    _fleet(db, states)

    first = board.fleet(limit=50, offset=0)
    assert [r.status.tenant_id for r in first.records] == sorted(states)[:50]
    assert first.total == 121
    assert first.counts == {"backoff": 40, "stopped": 80, "failed": 1}

    last = board.fleet(limit=50, offset=100)
    assert len(last.records) == 21

    backoff = board.fleet(state="backoff", limit=50)
    assert backoff.total == 40
    assert {r.status.state for r in backoff.records} == {TenantState.BACKOFF}
    assert backoff.counts == first.counts  # the counts are of the whole fleet

    # "_" is a letter here, not LIKE's wildcard; the search ignores case
    assert [r.status.tenant_id for r in board.fleet(search="P_X").records] == ["shop_x"]
    assert board.fleet(search="shop-11", limit=50).total == 10
    assert board.fleet(search="%", limit=50).total == 0


def test_a_stale_status_is_shown_and_counted_as_standby(db, board) -> None:
    _fleet(db, {"t1": "connected"})
    with db.connection() as conn:  # its owner holds no lease on it
        conn.execute("UPDATE wamgr_tenants SET owner = 'gone' WHERE tenant_id = 't1'")

    page = board.fleet()
    assert page.records[0].status.state is TenantState.STANDBY
    assert page.counts == {"standby": 1}
    assert board.records(["t1", "unknown"])[0].status.state is TenantState.STANDBY


def test_history_and_deliveries_come_newest_first(db, board) -> None:
    tenants = TenantStore(db)
    tenants.add("t1")
    steps = [(TenantState.CONNECTING, "stopped"), (TenantState.BACKOFF, "connecting")]
    for state, old in steps:
        status = TenantStatus("t1", state, owner="inst-0", attempt=1, last_error="reset")
        tenants.write_statuses([(status, old)], "inst-0", [(status, old)], [HOOK])

    history = board.history("t1")
    assert [(h.old_state, h.new_state) for h in history] == [
        ("connecting", "backoff"),
        ("stopped", "connecting"),
    ]
    assert history[0].detail == "reset" and history[0].owner == "inst-0"
    deliveries = board.deliveries("t1")
    assert [d.outcome for d in deliveries] == ["pending", "pending"]
    assert deliveries[0].id > deliveries[1].id
    assert board.history("other") == [] and board.deliveries("other") == []


def test_live_instances_show_their_leases_and_capacity(db, board) -> None:
    instances = InstanceStore(db)
    mine = instances.claim("inst-a", 30.0)
    instances.claim("inst-b", 30.0)
    instances.claim("inst-gone", 0.0)  # expired at once
    board.record_capacity(mine, 50)
    leases = LeaseStore(db, mine)
    for tenant in ("t1", "t2"):
        assert leases.acquire(tenant, "inst-a", 30.0) is not None

    shown = {i.instance_id: i for i in board.instances()}
    assert set(shown) == {"inst-a", "inst-b"}
    assert (shown["inst-a"].leases, shown["inst-a"].capacity) == (2, 50)
    assert (shown["inst-b"].leases, shown["inst-b"].capacity) == (0, None)


def test_endpoints_show_queue_failures_and_whether_disabled(db, board) -> None:
    tenants = TenantStore(db)
    outbox = Outbox(db)
    tenants.add("t1")
    for n in range(3):
        status = TenantStatus("t1", TenantState.CONNECTED if n % 2 else TenantState.BACKOFF)
        tenants.write_statuses([(status, None)], "inst-0", [(status, None)], [HOOK])
    rows = outbox.claim_due("w", [HOOK], 10, 30.0)
    outbox.delivered(rows[0].id, 200)
    outbox.failed(rows[1].id, 500, "HTTP 500", retry_in_s=60.0)

    (hook, other) = board.endpoints([HOOK, "http://127.0.0.1:9/other"])
    assert (hook.url, hook.queued, hook.failing, hook.delivered, hook.given_up) == (
        HOOK,
        2,
        1,
        1,
        0,
    )
    assert hook.last_error == "HTTP 500" and hook.disabled_at is None
    assert other.queued == 0 and other.disabled_at is None

    outbox.disable_endpoint(HOOK, "410 Gone")
    (hook,) = board.endpoints()
    assert hook.disabled_reason == "410 Gone" and hook.given_up == 2 and hook.queued == 0
