"""``wamgr send`` queues a message (any instance then sends it) and ``wamgr messages`` lists
a tenant's outbound messages."""

from __future__ import annotations

import json

from .conftest import Wamgr, explain, ok


def test_send_queues_once_per_idempotency_key_and_messages_lists_it(wamgr: Wamgr) -> None:
    ok(wamgr("tenants", "add", "shop-1"))

    first = ok(wamgr("send", "shop-1", "+15550001111", "shipped", "--idempotency-key", "o-42"))
    again = ok(wamgr("send", "shop-1", "+15550001111", "shipped", "--idempotency-key", "o-42"))
    listed = json.loads(ok(wamgr("messages", "shop-1", "--status", "queued", "--json")))
    table = ok(wamgr("messages", "shop-1"))

    message_id, status = first.split()
    assert status == "queued" and again.split()[0] == message_id
    assert [(m["message_id"], m["to"], m["status"]) for m in listed] == [
        (message_id, "15550001111", "queued")
    ]
    assert listed[0]["idempotency_key"] == "o-42"
    header, row = table.splitlines()
    assert header.split() == ["MESSAGE", "STATUS", "TO", "QUEUED", "SENT", "ERROR"]
    assert row.split()[:3] == [message_id, "queued", "15550001111"]


def test_send_refuses_unknown_tenants_and_bad_recipients(wamgr: Wamgr) -> None:
    unknown = wamgr("send", "nobody", "+15550001111", "hi")
    bad = wamgr("send", "nobody", "not-a-number", "hi")

    assert unknown.exit_code == 3, explain(unknown)
    assert "unknown tenant 'nobody'" in unknown.stderr
    assert bad.exit_code == 2, explain(bad)
    assert "invalid recipient" in bad.stderr
