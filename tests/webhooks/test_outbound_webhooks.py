"""The outbound queue's webhooks: ``message.sent`` and ``message.unknown`` are written with
the change of state they report and reach the endpoint."""

from __future__ import annotations

import uuid

import psycopg
from psycopg.types.json import Jsonb

from wamgr import OutboundStatus, TenantState


def test_sent_and_unknown_messages_are_reported_to_the_endpoint(
    hooked, receiver, database_url: str, wait_until
) -> None:
    mgr = hooked(send_rate=None)
    mgr.tenants_store.add("t1")
    stuck = str(uuid.uuid4())
    with psycopg.connect(database_url, autocommit=True) as conn:  # a sender died mid-send
        conn.execute(
            "INSERT INTO wamgr_outbound (message_id, tenant_id, payload, status, sender,"
            " created_at, expires_at) VALUES (%s, 't1', %s, 'sending', 'gw-dead', now(),"
            " now() + interval '1 hour')",
            (stuck, Jsonb({"to": "15550001111", "text": "maybe"})),
        )
    message = mgr.send("t1", "15550001111", "hello", idempotency_key="order-7")
    mgr.connect("t1")
    mgr.wait_for("t1", TenantState.CONNECTED, timeout=5)
    wait_until(lambda: mgr.outbound("t1", message.message_id).status is OutboundStatus.SENT)

    def events(deliveries):
        return {d.event["type"]: d.event["data"] for d in deliveries}

    got = events(receiver.wait(lambda ds: {"message.sent", "message.unknown"} <= set(events(ds))))
    sent = mgr.outbound("t1", message.message_id)
    assert got["message.sent"] == {
        "tenant_id": "t1",
        "message_id": message.message_id,
        "status": "sent",
        "to": "15550001111",
        "wa_message_id": sent.wa_message_id,
        "error": None,
        "idempotency_key": "order-7",
    }
    assert got["message.unknown"]["message_id"] == stuck
    assert "may or may not have been sent" in got["message.unknown"]["error"]
