"""Sending a message through the API."""

from __future__ import annotations

from wamgr import TenantState
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
