"""The outbox and the command table, on a real PostgreSQL."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from wamgr.status import Desired, TenantState, TenantStatus
from wamgr.store.commands import ANY_INSTANCE, Command, CommandStore
from wamgr.store.leases import LeaseStore
from wamgr.store.outbox import Outbox
from wamgr.store.tenants import TenantStore
from wamgr.transport.base import MessageReceived
from wamgr.webhooks.events import STATUS_EVENT, message_event

URL = "http://127.0.0.1:9/hooks"
OTHER_URL = "http://127.0.0.1:9/other"


def _change(tenant_id: str, old: str, new: TenantState) -> tuple[TenantStatus, str]:
    return TenantStatus(tenant_id, new, owner="me"), old


def test_status_events_are_written_with_the_rows_the_fence_lets_through(db) -> None:
    tenants, leases, outbox = TenantStore(db), LeaseStore(db), Outbox(db)
    for tenant_id in ("mine", "theirs"):
        tenants.set_desired(tenant_id, Desired.CONNECTED)
    leases.acquire("theirs", "someone-else", 60)
    changes = [
        _change("mine", "stopped", TenantState.CONNECTING),
        _change("theirs", "stopped", TenantState.CONNECTING),
    ]
    events = [*changes, (TenantStatus("mine", TenantState.CONNECTED), "connecting")]

    written = tenants.write_statuses(changes, "me", events, [URL, OTHER_URL])

    assert written == 1
    rows = outbox.rows()
    assert [(r["tenant_id"], r["endpoint"]) for r in rows] == [
        ("mine", URL),
        ("mine", OTHER_URL),
        ("mine", URL),
        ("mine", OTHER_URL),
    ]
    assert rows[0]["webhook_id"] == rows[1]["webhook_id"] != rows[2]["webhook_id"]


def test_the_database_builds_a_status_event_with_the_status_fields(db) -> None:
    tenants, outbox = TenantStore(db), Outbox(db)
    tenants.set_desired("t1", Desired.CONNECTED)
    at = datetime(2025, 1, 2, 3, 4, 5, 678_901, tzinfo=timezone(timedelta(hours=2)))
    retry = datetime(2025, 1, 2, 1, 5, 0, 250_000, tzinfo=UTC)
    status = TenantStatus(
        "t1",
        TenantState.BACKOFF,
        jid="1555@s.whatsapp.net",
        owner="me",
        attempt=2,
        next_retry_at=retry,
        last_error='connection "lost" \\ ünïcode',
        updated_at=at,
    )

    tenants.write_statuses([(status, "connected")], "me", [(status, "connected")], [URL])

    (row,) = outbox.claim_due("w", [URL], 10, claim_s=30.0)
    assert row.event_type == STATUS_EVENT and outbox.rows()[0]["tenant_id"] == "t1"
    assert re.fullmatch(r"msg_[0-9a-f]{32}", row.webhook_id)
    assert json.loads(row.body) == {
        "type": "session.status",
        "timestamp": "2025-01-02T01:04:05.678Z",  # UTC, milliseconds, "Z"
        "data": {
            "tenant_id": "t1",
            "old_state": "connected",
            "new_state": "backoff",
            "reason": 'connection "lost" \\ ünïcode',
            "attempt": 2,
            "next_retry_at": "2025-01-02T01:05:00.250000+00:00",
            "owner": "me",
            "jid": "1555@s.whatsapp.net",
        },
    }


def test_a_first_status_event_has_no_old_state_and_every_event_its_own_id(db) -> None:
    tenants, outbox = TenantStore(db), Outbox(db)
    tenants.set_desired("t1", Desired.CONNECTED)
    status = TenantStatus("t1", TenantState.CONNECTING, owner="me")

    tenants.write_statuses([(status, None)], "me", [(status, None)] * 50, [URL])

    rows = outbox.claim_due("w", [URL], 100, claim_s=30.0)
    assert len({r.webhook_id for r in rows}) == 50
    data = json.loads(rows[0].body)["data"]
    assert (data["old_state"], data["new_state"], data["next_retry_at"], data["jid"]) == (
        None,
        "connecting",
        None,
        None,
    )


def test_an_inbound_message_is_one_event_however_often_it_arrives(db) -> None:
    outbox = Outbox(db)
    event = message_event("t1", MessageReceived(0, "m-1", "15550002222", "hi"))

    first = outbox.record_inbound("t1", "m-1", event, [URL])
    again = outbox.record_inbound(
        "t1", "m-1", message_event("t1", MessageReceived(0, "m-1", "x", "y")), [URL]
    )

    assert (first, again) == (True, False)
    assert [r["webhook_id"] for r in outbox.rows()] == [event.webhook_id]


@pytest.mark.slow
def test_workers_claim_disjoint_rows_and_a_dead_workers_rows_come_back_with_their_ids(
    db,
) -> None:
    outbox = Outbox(db)
    for n in range(4):
        outbox.record_inbound(
            "t1", f"m-{n}", message_event("t1", MessageReceived(0, f"m-{n}", "s", "t")), [URL]
        )

    a = outbox.claim_due("a", [URL], 3, claim_s=0.2)
    b = outbox.claim_due("b", [URL], 3, claim_s=0.2)
    assert len(a) == 3 and len(b) == 1
    assert not {r.id for r in a} & {r.id for r in b}
    assert outbox.claim_due("c", [URL], 10, claim_s=0.2) == []

    time.sleep(0.3)  # worker a died holding its claims; they expire
    again = outbox.claim_due("c", [URL], 10, claim_s=10)
    assert sorted(r.webhook_id for r in again) == sorted(r.webhook_id for r in a + b)


def test_a_failed_attempt_waits_and_a_given_up_row_is_done(db) -> None:
    outbox = Outbox(db)
    outbox.record_inbound(
        "t1", "m-1", message_event("t1", MessageReceived(0, "m-1", "s", "t")), [URL]
    )
    (row,) = outbox.claim_due("w", [URL], 10, claim_s=10)

    outbox.failed(row.id, 500, "HTTP 500", retry_in_s=60)
    count, due = outbox.pending([URL])
    assert count == 1 and 50 < due <= 60
    assert outbox.claim_due("w", [URL], 10, claim_s=10) == []

    outbox.failed(row.id, 500, "HTTP 500", retry_in_s=None)
    assert outbox.pending([URL]) == (0, None)
    assert outbox.rows()[0]["attempts"] == 2


def test_a_disabled_endpoint_gets_no_new_events(db) -> None:
    outbox = Outbox(db)
    outbox.record_inbound(
        "t1", "m-1", message_event("t1", MessageReceived(0, "m-1", "s", "t")), [URL]
    )

    assert outbox.disable_endpoint(URL, "410 Gone") == 1
    outbox.record_inbound(
        "t1", "m-2", message_event("t1", MessageReceived(0, "m-2", "s", "t")), [URL, OTHER_URL]
    )

    assert [r["endpoint"] for r in outbox.rows() if r["gave_up_at"] is None] == [OTHER_URL]
    assert list(outbox.disabled_endpoints()) == [URL]
    assert outbox.enable_endpoint(URL) and not outbox.disabled_endpoints()


def test_commands_go_to_the_live_holder_or_to_any_instance(db) -> None:
    commands, leases = CommandStore(db), LeaseStore(db)
    leases.acquire("held", "gw-1", 60)

    assert commands.send("held", Command.RECONNECT, sender="gw-2") == "gw-1"
    assert commands.send("held", Command.RECONNECT, sender="gw-1") is None  # its own
    assert commands.send("free", Command.DISCONNECT, sender=None) is None
    assert commands.send("free", Command.CONNECT, sender=None, anyone=True) == ANY_INSTANCE

    assert [(c.tenant_id, c.command) for c in commands.take("gw-2")] == [("free", Command.CONNECT)]
    assert [(c.tenant_id, c.command, c.sender) for c in commands.take("gw-1")] == [
        ("held", Command.RECONNECT, "gw-2")
    ]
    assert commands.take("gw-1") == []


def test_rows_of_a_disabled_endpoint_are_given_up_not_claimed(db):
    """A row that slipped in while its endpoint was being disabled is never sent."""
    outbox = Outbox(db)
    url = "https://hooks.example/a"
    outbox.disable_endpoint(url, "410 Gone")
    with db.connection() as conn:  # as if its insert had seen the endpoint still enabled
        conn.execute(
            "INSERT INTO wamgr_outbox (webhook_id, endpoint, event_type, tenant_id, body)"
            " VALUES ('msg_late', %s, 'session.status', 't1', '{}')",
            (url,),
        )

    assert outbox.claim_due("w", [url], 10, 30.0) == []
    (row,) = outbox.rows(url)
    assert row["gave_up_at"] is not None and row["last_error"] == "endpoint disabled: 410 Gone"
