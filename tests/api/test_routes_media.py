"""``GET /api/tenants/{id}/messages/{message_id}/media``: the bytes the simulator sent, with
their mime type, from the instance that holds the tenant; named errors otherwise."""

from __future__ import annotations

import pytest

from wamgr import TenantState
from wamgr.transport.sim import SimWhatsApp

PDF = b"%PDF-1.7\n" + bytes(range(256))


def test_the_media_of_an_inbound_message_is_downloaded(mgr, serve_api, sim: SimWhatsApp, api_error):
    api = serve_api(mgr)
    mgr.connect("t1")
    jid = mgr.wait_for("t1", TenantState.CONNECTED, timeout=5).jid
    with_media = sim.deliver_message(jid, "document", media=PDF, mime="application/pdf")
    text_only = sim.deliver_message(jid, "text", text="no media")

    got = api.get(f"/api/tenants/t1/messages/{with_media}/media")
    none = api_error(
        api.get(f"/api/tenants/t1/messages/{text_only}/media"), 404, "MediaUnavailable"
    )
    unknown = api_error(api.get("/api/tenants/nobody/messages/x/media"), 404, "UnknownTenant")

    assert got.status_code == 200, got.text
    assert got.content == PDF and got.headers["content-type"] == "application/pdf"
    assert text_only in none["message"] and unknown


@pytest.mark.slow
def test_a_tenant_without_a_link_here_is_refused_naming_its_state(mgr, serve_api, api_error):
    api = serve_api(mgr)
    mgr.tenants_store.add("t2")  # known, not run by this instance

    body = api_error(api.get("/api/tenants/t2/messages/m1/media"), 409, "NotConnected")

    assert body["state"] == "stopped"
