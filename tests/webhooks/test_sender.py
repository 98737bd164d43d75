"""Webhook delivery against a receiver started by the test: signatures, retries, 410,
restarts; and the pure parts of the sender (retry delays, Retry-After, shown URLs)."""

from __future__ import annotations

import itertools
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families
from standardwebhooks import Webhook, WebhookVerificationError

from wamgr import TenantState
from wamgr.store.outbox import Outbox
from wamgr.webhooks.sender import parse_retry_after, retry_delay, shown_url

CONNECTED = TenantState.CONNECTED


def _verify(secret: str, headers: dict[str, str], body: str) -> bool:
    """The check a receiver does, with the official ``standardwebhooks`` package."""
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True


def _settled(outbox: Outbox, event_type: str, wait_until) -> dict:
    """The outbox row of ``event_type`` once the worker recorded its outcome (the receiver
    sees a delivery a moment before the worker records it)."""

    def row() -> dict:
        return next(r for r in outbox.rows() if r["event_type"] == event_type)

    wait_until(lambda: row()["delivered_at"] or row()["gave_up_at"], what=f"{event_type} settled")
    return row()


def _status_events(deliveries, tenant_id: str) -> list[dict]:
    return [
        d.event["data"]
        for d in deliveries
        if d.event["type"] == "session.status" and d.event["data"]["tenant_id"] == tenant_id
    ]


@pytest.mark.slow
def test_every_state_change_and_message_is_delivered_signed(
    hooked, receiver, sim, webhook_secret
) -> None:
    mgr = hooked()
    mgr.connect("t1")
    jid = mgr.wait_for("t1", CONNECTED, timeout=5).jid
    message_id = sim.inbound(jid, "15550002222", "hello")

    deliveries = receiver.wait(
        lambda ds: (
            any(d.event["type"] == "message.received" for d in ds)
            and any(e["new_state"] == "connected" for e in _status_events(ds, "t1"))
        )
    )

    for delivery in deliveries:
        assert _verify(webhook_secret, delivery.headers, delivery.body), delivery
        assert delivery.headers["content-type"] == "application/json"
        assert delivery.headers["webhook-id"].startswith("msg_")
        assert abs(int(delivery.headers["webhook-timestamp"]) - time.time()) < 60
    assert len({d.headers["webhook-id"] for d in deliveries}) == len(deliveries)
    changes = [(e["old_state"], e["new_state"]) for e in _status_events(deliveries, "t1")]
    assert changes[0][0] == "stopped"
    assert changes[-1][1] == "connected"
    assert all(a[1] == b[0] for a, b in itertools.pairwise(changes)), changes
    connected = _status_events(deliveries, "t1")[-1]
    assert connected["attempt"] == 0 and connected["reason"] is None
    assert connected["owner"] == "inst-0" and connected["jid"] == jid
    message = next(d.event for d in deliveries if d.event["type"] == "message.received")
    assert message["data"] == {
        "tenant_id": "t1",
        "message_id": message_id,
        "type": "text",
        "sender": "15550002222",
        "chat": "15550002222",
        "is_group": False,
        "text": "hello",
        "quoted_id": None,
        "media": None,
    }
    assert message["timestamp"].endswith("Z")


@pytest.mark.slow
def test_a_drop_reports_old_and_new_state_reason_and_attempt(hooked, receiver, sim) -> None:
    mgr = hooked()
    mgr.connect("t1")
    jid = mgr.wait_for("t1", CONNECTED, timeout=5).jid

    sim.drop(jid, "network")
    mgr.wait_for("t1", TenantState.BACKOFF, timeout=5)

    deliveries = receiver.wait(
        lambda ds: any(e["new_state"] == "backoff" for e in _status_events(ds, "t1"))
    )
    backoff = next(e for e in _status_events(deliveries, "t1") if e["new_state"] == "backoff")
    assert backoff["old_state"] == "connected"
    assert backoff["attempt"] == 1
    assert backoff["reason"].startswith("connection lost")
    assert backoff["next_retry_at"] is not None


@pytest.mark.slow
def test_a_receiver_that_fails_twice_gets_the_event_three_times_with_one_id(
    hooked, receiver, sim, outbox, wait_until
) -> None:
    receiver.answer = lambda _delivery, nth: (500, {}) if nth <= 2 else (204, {})
    mgr = hooked()
    mgr.connect("t1")
    jid = mgr.wait_for("t1", CONNECTED, timeout=5).jid
    sim.inbound(jid, "15550002222", "hello", message_id="m-1")

    deliveries = receiver.wait(
        lambda ds: any(
            d.event["type"] == "message.received" and d.headers["x-answered"] == "204" for d in ds
        )
    )

    attempts = [d for d in deliveries if d.event["type"] == "message.received"]
    assert len(attempts) == 3
    assert len({d.headers["webhook-id"] for d in attempts}) == 1
    assert [d.headers["x-answered"] for d in attempts] == ["500", "500", "204"]
    assert len({d.body for d in attempts}) == 1  # the same event each time
    row = _settled(outbox, "message.received", wait_until)
    assert row["attempts"] == 3 and row["delivered_at"] is not None and row["last_status"] == 204
    metrics = {
        (sample.name, sample.labels.get("endpoint")): sample.value
        for family in text_string_to_metric_families(mgr.metrics.render().decode())
        for sample in family.samples
    }
    assert metrics[("wamgr_webhook_failures_total", receiver.url)] >= 2
    assert metrics[("wamgr_webhook_deliveries_total", receiver.url)] >= 1


@pytest.mark.slow
def test_retry_after_is_honoured(hooked, receiver, sim) -> None:
    asked = {}

    def answer(delivery, nth):
        asked.setdefault(delivery.headers["webhook-id"], []).append(time.monotonic())
        return (503, {"retry-after": "1"}) if nth == 1 else (200, {})

    receiver.answer = answer
    mgr = hooked()
    mgr.connect("t1")
    jid = mgr.wait_for("t1", CONNECTED, timeout=5).jid
    sim.inbound(jid, "15550002222", "hello", message_id="m-1")

    deliveries = receiver.wait(
        lambda ds: (
            [d.event["type"] for d in ds if d.headers["x-answered"] == "200"].count(
                "message.received"
            )
            == 1
        )
    )

    message_id = next(
        d.headers["webhook-id"] for d in deliveries if d.event["type"] == "message.received"
    )
    first, second = asked[message_id]
    assert second - first >= 0.95  # not the 0.05 s the retry policy alone would wait


@pytest.mark.slow
def test_a_410_disables_the_endpoint(hooked, receiver, sim, outbox, wait_until) -> None:
    receiver.answer = lambda _d, _n: (410, {})
    mgr = hooked()
    mgr.connect("t1")
    jid = mgr.wait_for("t1", CONNECTED, timeout=5).jid
    receiver.wait(lambda ds: len(ds) >= 1)

    wait_until(lambda: receiver.url in outbox.disabled_endpoints(), what="endpoint disabled")
    sim.inbound(jid, "15550002222", "after the 410", message_id="m-2")
    mgr.remove("t1")

    # A status row written while the endpoint was being disabled is given up by the next
    # delivery pass; none is ever sent.
    wait_until(
        lambda: all(r["gave_up_at"] is not None for r in outbox.rows()),
        what="every row given up",
    )
    assert len(receiver.deliveries) == 1  # nothing more was sent
    rows = outbox.rows()
    assert all(r["delivered_at"] is None for r in rows)
    assert not any(r["event_type"] == "message.received" for r in rows)  # not even written
    assert outbox.enable_endpoint(receiver.url)


@pytest.mark.slow
def test_an_event_written_before_a_restart_is_delivered_after_it(
    hooked, receiver, sim, make_manager
) -> None:
    receiver.answer = lambda _d, _n: (503, {})
    first = hooked(instance_id="gw")
    first.connect("t1")
    jid = first.wait_for("t1", CONNECTED, timeout=5).jid
    sim.inbound(jid, "15550002222", "before the restart", message_id="m-1")
    failed = receiver.wait(lambda ds: any(d.event["type"] == "message.received" for d in ds))
    message_id = next(
        d.headers["webhook-id"] for d in failed if d.event["type"] == "message.received"
    )
    first.stop()
    receiver.answer = lambda _d, _n: (200, {})
    before = len(receiver.deliveries)

    hooked(instance_id="gw")  # the restart: a new manager on the same database

    receiver.wait(lambda ds: any(d.headers["webhook-id"] == message_id for d in ds[before:]))
    ok = [
        d for d in receiver.accepted() if d.event["type"] == "message.received"
    ]  # handled once, under the id it had before the restart
    assert [d.headers["webhook-id"] for d in ok] == [message_id]


def test_retry_delays_grow_with_jitter_up_to_the_max() -> None:
    delays = [retry_delay(n, base_s=5, max_s=3600) for n in range(1, 12)]

    assert delays[:4] == [5, 10, 20, 40]
    assert max(delays) == 3600
    assert retry_delay(1, base_s=5, max_s=3600, rnd=0.0) == pytest.approx(4.0)
    assert retry_delay(1, base_s=5, max_s=3600, rnd=0.999) == pytest.approx(6.0, abs=0.01)
    assert parse_retry_after("120") == 120
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0


def test_shown_urls_drop_credentials_query_and_fragment() -> None:
    shown = shown_url("https://user:secret@hooks.example:8443/in/wamgr?token=abc#frag")

    assert shown == "https://hooks.example:8443/in/wamgr"
    assert shown_url("http://hooks.example/h") == "http://hooks.example/h"
