"""The webhook events: their bodies, ids and timestamps (pure functions, no database)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from wamgr.transport.base import MessageReceived
from wamgr.webhooks.events import MESSAGE_EVENT, message_event


def test_a_message_event_carries_the_message_and_is_stamped_now() -> None:
    before = datetime.now(UTC)

    event = message_event("t1", MessageReceived(0, "m-1", "15550002222", "hello"))

    body = json.loads(event.body)
    assert (event.event_type, event.tenant_id) == (MESSAGE_EVENT, "t1")
    assert body["type"] == "message.received"
    assert body["data"] == {
        "tenant_id": "t1",
        "message_id": "m-1",
        "type": "text",
        "sender": "15550002222",
        "chat": "15550002222",
        "is_group": False,
        "text": "hello",
        "quoted_id": None,
        "media": None,
    }
    stamped = datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))
    assert before - timedelta(milliseconds=1) <= stamped <= datetime.now(UTC)


def test_every_event_gets_its_own_id() -> None:
    ids = {message_event("t1", MessageReceived(0, "m-1", "s", "t")).webhook_id for _ in range(50)}

    assert len(ids) == 50
    assert all(i.startswith("msg_") and len(i) == 4 + 32 for i in ids)


def test_an_outbound_event_is_message_dot_its_state_with_the_message_fields() -> None:
    import pytest

    from wamgr.webhooks.events import outbound_event

    at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    event = outbound_event(
        "t1",
        "m-1",
        "sent",
        at,
        to="15550001111",
        wa_message_id="3EB0",
        error=None,
        idempotency_key="k-1",
    )

    assert (event.event_type, event.tenant_id) == ("message.sent", "t1")
    assert json.loads(event.body) == {
        "type": "message.sent",
        "timestamp": "2026-03-01T12:00:00.000Z",
        "data": {
            "tenant_id": "t1",
            "message_id": "m-1",
            "status": "sent",
            "to": "15550001111",
            "wa_message_id": "3EB0",
            "error": None,
            "idempotency_key": "k-1",
        },
    }
    for state in ("failed", "expired", "unknown"):
        made = outbound_event("t1", "m", state, at, to=None, wa_message_id=None, error="x",
                              idempotency_key=None)  # fmt: skip
        assert made.event_type == f"message.{state}"
    with pytest.raises(ValueError, match="no event for outbound status 'queued'"):
        outbound_event("t1", "m", "queued", at, to=None, wa_message_id=None, error=None,
                       idempotency_key=None)  # fmt: skip
