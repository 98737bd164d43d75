"""The pairing routes: the QR in each format, and the pair code."""

from __future__ import annotations

from wamgr import TenantState
from wamgr.transport.sim import SimWhatsApp

CONNECTED = TenantState.CONNECTED


def test_qr_in_each_format_while_pairing(make_manager, serve_api, clock, api_error) -> None:
    manual = SimWhatsApp(auto_pair=False, clock=clock)
    mgr = make_manager(transport=manual)
    api = serve_api(mgr)
    api.put("/api/tenants/t1")
    mgr.wait_for("t1", TenantState.PAIRING, timeout=5)

    png = api.get("/api/tenants/t1/qr", params={"format": "png"})
    svg = api.get("/api/tenants/t1/qr", params={"format": "svg"})
    text = api.get("/api/tenants/t1/qr", params={"format": "text"})
    default = api.get("/api/tenants/t1/qr")

    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert "<svg" in svg.text
    assert text.headers["content-type"].startswith("text/plain")
    assert "█" in text.text
    assert default.content == png.content
    assert png.headers["cache-control"] == "no-store"

    code = api.post("/api/tenants/t1/pair-code", json={"phone": "+1 555 123 4567"})
    assert code.status_code == 200
    manual.enter_code(code.json()["code"])
    mgr.wait_for("t1", CONNECTED, timeout=5)

    body = api_error(api.get("/api/tenants/t1/qr?format=svg"), 409, "NotPairing")
    assert body["state"] == "connected"
    api_error(
        api.post("/api/tenants/t1/pair-code", json={"phone": "15551234567"}), 409, "NotPairing"
    )
