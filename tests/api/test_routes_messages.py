"""Sending a message through the API."""

from __future__ import annotations

import httpx
import pytest

from wamgr import TenantState
from wamgr.status import MAX_TEXT_CHARS
from wamgr.transport.sim import SimWhatsApp

CONNECTED = TenantState.CONNECTED


def test_a_message_is_sent_when_connected_and_refused_when_not(
    mgr, serve_api, sim: SimWhatsApp, api_error
) -> None:
    api = serve_api(mgr)
    api.put("/api/tenants/t1")
    jid = mgr.wait_for("t1", CONNECTED, timeout=5).jid

    sent = api.post("/api/tenants/t1/messages", json={"to": "15550001111", "text": "hello"})

    assert sent.status_code == 202
    message_id = sent.json()["message_id"]
    assert sim.sent_messages(jid)[-1] == ("15550001111", "hello", message_id)

    api.post("/api/tenants/t1/disconnect")
    refused = api.post("/api/tenants/t1/messages", json={"to": "15550001111", "text": "again"})

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
        "+15550001111",
        "15550001111@s.whatsapp.net",
        "120363012345678901@g.us",
        "123456789012345@lid",
        "120363012345678901@newsletter",
        "status@broadcast",
    ],
)
def test_phone_numbers_and_jids_are_recipients(connected_api, to: str) -> None:
    sent = connected_api.post("/api/tenants/t1/messages", json={"to": to, "text": "hi"})

    assert sent.status_code == 202, sent.text


@pytest.mark.parametrize(
    "to", [" ", "x", "123456", "1555000\n1111", "15550001111@example.com", "1555000\x001111"]
)
def test_a_bad_recipient_is_422_naming_the_field(connected_api, api_error, to: str) -> None:
    refused = connected_api.post("/api/tenants/t1/messages", json={"to": to, "text": "x"})

    body = api_error(refused, 422, "InvalidRecipient")
    assert body["message"].startswith("to: ")
    assert body["field"] == "to"


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


@pytest.mark.parametrize("text", ["a\x00b", "bell\x07", "esc\x1b[31m", "del\x7f"])
def test_text_with_control_characters_is_422(connected_api, api_error, text: str) -> None:
    refused = connected_api.post(
        "/api/tenants/t1/messages", json={"to": "15550001111", "text": text}
    )

    body = api_error(refused, 422, "InvalidRequest")
    assert "body.text" in body["message"] and "control character" in body["message"]


def test_text_may_hold_tabs_and_line_breaks(connected_api, sim) -> None:
    text = "line 1\r\nline 2\n\tindented"

    sent = connected_api.post("/api/tenants/t1/messages", json={"to": "15550001111", "text": text})

    assert sent.status_code == 202, sent.text
