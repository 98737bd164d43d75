"""Sending a message through the API: queued (the default) or sent now (``"queue": false``),
read, listed, cancelled and resent."""

from __future__ import annotations

import httpx
import pytest

from wamgr import TenantState
from wamgr.status import MAX_TEXT_CHARS
from wamgr.transport.sim import SimWhatsApp

CONNECTED = TenantState.CONNECTED


@pytest.mark.slow
def test_without_the_queue_a_message_is_sent_now_when_connected_and_refused_when_not(
    mgr, serve_api, sim: SimWhatsApp, api_error
) -> None:
    api = serve_api(mgr)
    api.put("/api/tenants/t1")
    jid = mgr.wait_for("t1", CONNECTED, timeout=5).jid
    now = {"to": "15550001111", "queue": False}

    sent = api.post("/api/tenants/t1/messages", json={**now, "text": "hello"})

    assert sent.status_code == 202
    message_id = sent.json()["message_id"]
    assert sent.json()["status"] == "sent"
    assert sim.sent_messages(jid)[-1] == ("15550001111", "hello", message_id)

    api.post("/api/tenants/t1/disconnect")
    refused = api.post("/api/tenants/t1/messages", json={**now, "text": "again"})

    body = api_error(refused, 409, "NotConnected")
    assert body["state"] == "stopped"
    assert "connect it first" in body["message"]
    assert len(sim.sent_messages(jid)) == 1


@pytest.fixture
def connected_api(mgr, serve_api) -> httpx.Client:
    """The API of ``mgr`` with tenant t1 connected."""
    api = serve_api(mgr)
    api.put("/api/tenants/t1")
    mgr.wait_for("t1", CONNECTED, timeout=5)
    return api


@pytest.mark.parametrize(
    "to",
    [
        "+15550001111",  # the quick loop's case; every form is parsed in tests/test_status.py
        *(
            pytest.param(to, marks=pytest.mark.slow)
            for to in (
                "15550001111@s.whatsapp.net",
                "120363012345678901@g.us",
                "123456789012345@lid",
                "120363012345678901@newsletter",
                "status@broadcast",
            )
        ),
    ],
)
def test_phone_numbers_and_jids_are_recipients(connected_api, to: str) -> None:
    sent = connected_api.post("/api/tenants/t1/messages", json={"to": to, "text": "hi"})

    assert sent.status_code == 202, sent.text


@pytest.mark.parametrize(
    "to",
    [
        "x",
        *(
            pytest.param(to, marks=pytest.mark.slow)
            for to in (" ", "123456", "1555000\n1111", "15550001111@example.com", "1555000\x001111")
        ),
    ],
)
def test_a_bad_recipient_is_422_naming_the_field(connected_api, api_error, to: str) -> None:
    refused = connected_api.post("/api/tenants/t1/messages", json={"to": to, "text": "x"})

    body = api_error(refused, 422, "InvalidRecipient")
    assert body["message"].startswith("to: ")
    assert body["field"] == "to"


@pytest.mark.slow
def test_text_is_limited_to_what_whatsapp_accepts(connected_api, sim, api_error) -> None:
    longest = "é" * MAX_TEXT_CHARS

    sent = connected_api.post(
        "/api/tenants/t1/messages", json={"to": "15550001111", "text": longest}
    )
    refused = connected_api.post(
        "/api/tenants/t1/messages", json={"to": "15550001111", "text": longest + "x"}
    )

    assert sent.status_code == 202, sent.text
    body = api_error(refused, 422, "InvalidRequest")
    assert f"body.text: String should have at most {MAX_TEXT_CHARS} characters" in body["message"]


@pytest.mark.parametrize(
    "text",
    [
        "a\x00b",
        *(pytest.param(t, marks=pytest.mark.slow) for t in ("bell\x07", "esc\x1b[31m", "del\x7f")),
    ],
)
def test_text_with_control_characters_is_422(connected_api, api_error, text: str) -> None:
    refused = connected_api.post(
        "/api/tenants/t1/messages", json={"to": "15550001111", "text": text}
    )

    body = api_error(refused, 422, "InvalidRequest")
    assert "body.text" in body["message"] and "control character" in body["message"]


@pytest.mark.slow
def test_text_may_hold_tabs_and_line_breaks(connected_api, sim) -> None:
    text = "line 1\r\nline 2\n\tindented"

    sent = connected_api.post("/api/tenants/t1/messages", json={"to": "15550001111", "text": text})

    assert sent.status_code == 202, sent.text


# --- the queue ---------------------------------------------------------------------------


@pytest.mark.slow
def test_a_message_is_queued_whatever_the_state_and_sent_once_connected(
    mgr, serve_api, sim: SimWhatsApp, wait_until
) -> None:
    api = serve_api(mgr)
    mgr.tenants_store.add("t1")  # known, run by no instance yet

    posted = api.post("/api/tenants/t1/messages", json={"to": "15550001111", "text": "hello"})

    assert posted.status_code == 202, posted.text
    body = posted.json()
    assert body["status"] == "queued" and body["to"] == "15550001111"
    assert "text" not in body
    path = f"/api/tenants/t1/messages/{body['message_id']}"
    assert api.get(path).json()["status"] == "queued"

    api.put("/api/tenants/t1")
    jid = mgr.wait_for("t1", CONNECTED, timeout=5).jid
    wait_until(lambda: api.get(path).json()["status"] == "sent")
    sent = api.get(path).json()
    assert sim.sent_messages(jid) == [("15550001111", "hello", sent["wa_message_id"])]
    assert sent["sent_at"] is not None


@pytest.mark.slow
def test_the_same_idempotency_key_returns_the_first_message(mgr, serve_api) -> None:
    api = serve_api(mgr)
    mgr.tenants_store.add("t1")
    message = {"to": "15550001111", "text": "pay 10 EUR"}

    first = api.post("/api/tenants/t1/messages", json=message, headers={"idempotency-key": "k-1"})
    again = api.post("/api/tenants/t1/messages", json=message, headers={"idempotency-key": "k-1"})
    other = api.post("/api/tenants/t1/messages", json=message, headers={"idempotency-key": "k-2"})

    assert first.status_code == again.status_code == 202
    assert again.json()["message_id"] == first.json()["message_id"]
    assert again.json()["idempotency_key"] == "k-1"
    assert other.json()["message_id"] != first.json()["message_id"]
    assert len(api.get("/api/tenants/t1/messages").json()) == 2


@pytest.mark.slow
def test_list_cancel_and_resend(mgr, serve_api, api_error) -> None:
    api = serve_api(mgr)
    mgr.tenants_store.add("t1")
    ids = [
        api.post("/api/tenants/t1/messages", json={"to": "15550001111", "text": t}).json()[
            "message_id"
        ]
        for t in ("one", "two")
    ]

    cancelled = api.delete(f"/api/tenants/t1/messages/{ids[0]}")
    twice = api.delete(f"/api/tenants/t1/messages/{ids[0]}")
    queued = api.get("/api/tenants/t1/messages", params={"status": "queued"}).json()
    not_resendable = api.post(f"/api/tenants/t1/messages/{ids[1]}/resend")
    resent = api.post(f"/api/tenants/t1/messages/{ids[0]}/resend")

    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    body = api_error(twice, 409, "MessageStateConflict")
    assert body["status"] == "cancelled" and body["message_id"] == ids[0]
    assert [m["message_id"] for m in queued] == [ids[1]]
    assert api_error(not_resendable, 409, "MessageStateConflict")["status"] == "queued"
    assert resent.status_code == 202 and resent.json()["status"] == "queued"
    listed = api.get("/api/tenants/t1/messages", params={"status": "queued"}).json()
    assert [m["message_id"] for m in listed] == ids  # the resent one keeps its place


@pytest.mark.slow
def test_unknown_messages_bad_statuses_and_expiries_are_refused(mgr, serve_api, api_error) -> None:
    api = serve_api(mgr)
    mgr.tenants_store.add("t1")

    missing = api.get("/api/tenants/t1/messages/nope")
    bad_status = api.get("/api/tenants/t1/messages", params={"status": "lost"})
    bad_expiry = api.post(
        "/api/tenants/t1/messages", json={"to": "15550001111", "text": "x", "expires_in": 0}
    )
    long_key = api.post(
        "/api/tenants/t1/messages",
        json={"to": "15550001111", "text": "x"},
        headers={"idempotency-key": "k" * 256},
    )

    assert "has no outbound message 'nope'" in api_error(missing, 404, "UnknownMessage")["message"]
    api_error(bad_status, 422, "InvalidRequest")
    assert "expires_in" in api_error(bad_expiry, 422, "InvalidRequest")["message"]
    assert api_error(long_key, 422, "InvalidMessage")["field"] == "idempotency_key"
