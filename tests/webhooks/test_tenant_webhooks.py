"""A tenant's own webhook endpoints (only the events they chose, signed with their own
secret), the global endpoints still getting everything, every inbound kind and receipt as
an event with its fields, and dead deliveries listed and sent again with their webhook-id.
Every signature is checked with the official ``standardwebhooks`` package."""

from __future__ import annotations

import hashlib

import pytest
from standardwebhooks import Webhook

from wamgr import TenantState
from wamgr.store.tenants import TenantStore
from wamgr.transport.base import InboundKind, MessageReceived
from wamgr.webhooks.events import message_event

from .conftest import Delivery

CONNECTED = TenantState.CONNECTED
PEER = "15550002222@s.whatsapp.net"
GROUP = "120363000000000001@g.us"
#: The tenant endpoint's own secret (not the global one).
OWN_SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0MjQyNDI="


def _events(deliveries: list[Delivery], path: str, event_type: str | None = None) -> list[dict]:
    return [
        d.event
        for d in deliveries
        if d.path == path and (event_type is None or d.event["type"] == event_type)
    ]


def test_a_tenant_endpoint_gets_only_its_tenants_chosen_events_and_the_global_one_all(
    hooked, receiver, sim, outbox, webhook_secret
) -> None:
    mgr = hooked()
    own_url = receiver.url.replace("/hooks", "/own")
    mgr.configure(
        "t1",
        create=True,
        webhooks=[{"url": own_url, "events": ["message.received"], "secret": OWN_SECRET}],
    )
    mgr.connect("t1")
    mgr.connect("t2")
    jid1 = mgr.wait_for("t1", CONNECTED, timeout=5).jid
    jid2 = mgr.wait_for("t2", CONNECTED, timeout=5).jid
    sent = mgr.send_text("t1", PEER, "hello")
    sim.deliver_message(jid1, sender=PEER, text="to t1", message_id="IN-1")
    sim.deliver_message(jid2, sender=PEER, text="to t2", message_id="IN-2")
    sim.receipt(jid1, [sent], "delivered", sender=PEER)

    deliveries = receiver.wait(
        lambda ds: (
            len(_events(ds, "/hooks", "message.received")) == 2
            and len(_events(ds, "/hooks", "message.ack")) == 1
            and len(_events(ds, "/own")) == 1
            and {e["data"]["tenant_id"] for e in _events(ds, "/hooks", "session.status")}
            >= {"t1", "t2"}  # the status writer posts on its own thread
        ),
        timeout=30.0,  # many deliveries: generous on a loaded machine
    )

    own = _events(deliveries, "/own")
    assert [(e["type"], e["data"]["message_id"]) for e in own] == [("message.received", "IN-1")]
    # What was written for the tenant endpoint is exactly that (nothing still on its way):
    rows = outbox.rows(endpoint=own_url)
    assert [(r["event_type"], r["tenant_id"]) for r in rows] == [("message.received", "t1")]
    glob = _events(deliveries, "/hooks")
    assert {e["data"]["tenant_id"] for e in glob if e["type"] == "session.status"} == {"t1", "t2"}
    for delivery in deliveries:
        secret = OWN_SECRET if delivery.path == "/own" else webhook_secret
        Webhook(secret).verify(delivery.body, delivery.headers)  # raises if not signed so
    own_delivery = next(d for d in deliveries if d.path == "/own")
    glob_twin = next(
        d for d in deliveries if d.path == "/hooks" and d.event["data"].get("message_id") == "IN-1"
    )
    assert own_delivery.headers["webhook-id"] == glob_twin.headers["webhook-id"]  # one event


@pytest.mark.slow
def test_a_tenant_endpoint_works_without_any_global_endpoint(
    make_manager, receiver, sim, webhook_secret
) -> None:
    mgr = make_manager(webhook_retry_base_s=0.05)  # no global endpoint, no global secret
    mgr.configure("t1", create=True, webhooks=[{"url": receiver.url, "secret": OWN_SECRET}])
    mgr.connect("t1")
    mgr.wait_for("t1", CONNECTED, timeout=5)

    deliveries = receiver.wait(
        lambda ds: any(d.event["data"].get("new_state") == "connected" for d in ds)
    )

    for delivery in deliveries:
        Webhook(OWN_SECRET).verify(delivery.body, delivery.headers)


@pytest.mark.slow
def test_every_inbound_kind_and_receipt_is_an_event_with_its_fields(hooked, receiver, sim) -> None:
    mgr = hooked()
    mgr.connect("t1")
    jid = mgr.wait_for("t1", CONNECTED, timeout=5).jid
    media = b"%PDF-1.7 offer"
    kinds = [k for k in InboundKind if k is not InboundKind.OTHER]
    for n, kind in enumerate(kinds):
        sim.deliver_message(
            jid,
            kind,
            sender=PEER,
            chat=GROUP if n % 2 else None,
            text=f"text {n}",
            quoted_id=f"Q{n}",
            media=media if kind in {"image", "video", "audio", "document", "sticker"} else None,
            mime="application/pdf",
            filename="offer.pdf",
            message_id=f"IN-{n}",
        )
    sim.receipt(jid, ["OUT-1", "OUT-2"], "read", sender=PEER)

    deliveries = receiver.wait(
        lambda ds: (
            len([d for d in ds if d.event["type"] == "message.received"]) == len(kinds)
            and any(d.event["type"] == "message.ack" for d in ds)
        ),
        timeout=30.0,
    )

    received = {
        d.event["data"]["message_id"]: d.event["data"]
        for d in deliveries
        if d.event["type"] == "message.received"
    }
    for n, kind in enumerate(kinds):
        data = received[f"IN-{n}"]
        assert (data["type"], data["text"], data["sender"], data["quoted_id"]) == (
            str(kind),
            f"text {n}",
            PEER,
            f"Q{n}",
        )
        assert (data["chat"], data["is_group"]) == ((GROUP, True) if n % 2 else (PEER, False))
        if data["media"] is not None:
            assert data["media"]["sha256"] == hashlib.sha256(media).hexdigest()
            assert (data["media"]["size"], data["media"]["mime"]) == (len(media), "application/pdf")
        else:
            assert kind in {"text", "reaction", "location", "contact"}
    (ack,) = [d.event["data"] for d in deliveries if d.event["type"] == "message.ack"]
    assert ack == {
        "tenant_id": "t1",
        "message_ids": ["OUT-1", "OUT-2"],
        "status": "read",
        "chat": PEER,
        "sender": PEER,
    }


@pytest.mark.slow
def test_a_dead_delivery_is_listed_and_sent_again_with_its_webhook_id(
    hooked, receiver, sim, outbox, wait_until, webhook_secret
) -> None:
    refusing = [True]
    receiver.answer = lambda d, _n: (
        (500, {}) if refusing[0] and d.event["type"] == "message.received" else (200, {})
    )
    mgr = hooked(webhook_max_attempts=2)
    mgr.connect("t1")
    jid = mgr.wait_for("t1", CONNECTED, timeout=5).jid
    sim.deliver_message(jid, sender=PEER, text="lost?", message_id="IN-1")
    wait_until(lambda: outbox.deliveries("dead"), what="the delivery given up")

    (dead,) = outbox.deliveries("dead")
    assert (dead.event_type, dead.tenant_id, dead.attempts, dead.status) == (
        "message.received",
        "t1",
        2,
        "dead",
    )
    assert dead.last_error == "HTTP 500"
    refusing[0] = False

    assert outbox.retry_dead([dead.id]) == [dead.id]
    mgr.runtime.webhooks.wake()
    wait_until(lambda: dead.id in {d.id for d in outbox.deliveries("delivered")}, what="sent again")

    attempts = [d for d in receiver.deliveries if d.event["type"] == "message.received"]
    assert len(attempts) == 3 and {d.headers["webhook-id"] for d in attempts} == {dead.webhook_id}
    Webhook(webhook_secret).verify(attempts[-1].body, attempts[-1].headers)
    assert outbox.retry_dead([dead.id]) == []  # delivered: nothing to retry


def test_retry_all_leaves_deliveries_to_a_disabled_endpoint_dead(outbox, db) -> None:
    TenantStore(db).add("t1")
    for n, url in enumerate(("https://a.example/h", "https://gone.example/h")):
        event = message_event("t1", MessageReceived(0, f"m{n}", PEER, "x"))
        outbox.record_inbound("t1", f"m{n}", event, [url])
    for row in outbox.rows():
        outbox.failed(row["id"], 500, "HTTP 500", None)
    outbox.disable_endpoint("https://gone.example/h", "410 Gone")

    retried = outbox.retry_dead(None)

    assert [d.endpoint for d in outbox.deliveries("pending")] == ["https://a.example/h"]
    assert [d.endpoint for d in outbox.deliveries("dead")] == ["https://gone.example/h"]
    assert len(retried) == 1
