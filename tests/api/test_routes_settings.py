"""Per-tenant settings over HTTP: ``PUT /api/tenants/{id}`` with a JSON body sets them (a bad
field is 422 naming it), ``GET`` shows them with every secret masked; and the dead webhook
deliveries: listed, sent again by id or all, 404 for one that is not dead."""

from __future__ import annotations

import pytest

from wamgr import TenantState
from wamgr.store.outbox import Outbox
from wamgr.store.tenants import TenantStore
from wamgr.transport.base import MessageReceived
from wamgr.transport.sim import SimWhatsApp
from wamgr.webhooks.events import message_event

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
PROXY = "socks5://alice:pr0xy-pw@10.0.0.5:1080"


def test_put_with_settings_creates_the_tenant_dialling_through_its_proxy(
    mgr, serve_api, sim: SimWhatsApp
) -> None:
    api = serve_api(mgr)
    body = {
        "proxy": PROXY,
        "webhooks": [
            {"url": "https://crm.example/h", "events": ["message.received"], "secret": SECRET}
        ],
        "send_rate": 30,
        "metadata": {"crm": "acme"},
    }

    created = api.put("/api/tenants/t1", json=body)
    again = api.put("/api/tenants/t1", json={"send_burst": 5})
    mgr.wait_for("t1", TenantState.CONNECTED, timeout=5)
    shown = api.get("/api/tenants/t1")

    assert (created.status_code, again.status_code) == (201, 200)
    assert sim.dial_proxies("t1") == [PROXY]  # the first dial already went through it
    assert shown.json()["settings"] == {
        "proxy": "socks5://alice:***@10.0.0.5:1080",
        "webhooks": [
            {"url": "https://crm.example/h", "events": ["message.received"], "secret": "***"}
        ],
        "send_rate": 30.0,
        "send_burst": 5,
        "metadata": {"crm": "acme"},
    }
    for response in (created, again, shown, api.get("/api/tenants")):
        assert "pr0xy-pw" not in response.text and SECRET not in response.text


@pytest.mark.slow
def test_a_bad_setting_is_422_naming_the_field_and_changes_nothing(
    mgr, serve_api, api_error
) -> None:
    api = serve_api(mgr)

    bad_proxy = api_error(
        api.put("/api/tenants/t1", json={"proxy": "ftp://x:1"}), 422, "InvalidSetting"
    )
    bad_event = api_error(
        api.put(
            "/api/tenants/t1", json={"webhooks": [{"url": "https://a.example", "events": ["x"]}]}
        ),
        422,
        "InvalidSetting",
    )
    unknown = api_error(api.put("/api/tenants/t1", json={"colour": "red"}), 422, "InvalidRequest")
    not_json = api_error(
        api.put("/api/tenants/t1", content=b"{", headers={"content-type": "application/json"}),
        422,
        "InvalidRequest",
    )

    assert bad_proxy["field"] == "proxy"
    assert bad_event["field"] == "webhooks[0].events"
    assert "colour" in unknown["message"] and not_json
    assert mgr.tenants_store.get("t1") is None  # nothing was created


@pytest.mark.slow
def test_null_clears_a_setting_and_a_missing_field_keeps_it(mgr, serve_api) -> None:
    api = serve_api(mgr)
    api.put("/api/tenants/t1", json={"proxy": PROXY, "send_rate": 10})

    cleared = api.put("/api/tenants/t1", json={"proxy": None}).json()["settings"]

    assert cleared["proxy"] is None and cleared["send_rate"] == 10.0


def _dead_deliveries(mgr, count: int) -> list[int]:
    TenantStore(mgr.runtime.db).add("t1")
    outbox: Outbox = mgr.runtime.outbox
    for n in range(count):
        event = message_event("t1", MessageReceived(0, f"m{n}", "15550002222", "x"))
        outbox.record_inbound("t1", f"m{n}", event, ["https://user:pw@crm.example/h?token=t"])
    for row in outbox.rows():
        outbox.failed(row["id"], 500, "HTTP 500", None)
    return [row["id"] for row in outbox.rows()]


@pytest.mark.slow
def test_dead_deliveries_are_listed_and_sent_again(mgr, serve_api, api_error) -> None:
    api = serve_api(mgr)
    first, second, third = _dead_deliveries(mgr, 3)

    listed = api.get("/api/webhooks/deliveries", params={"status": "dead"}).json()
    one = api.post(f"/api/webhooks/deliveries/{first}/retry").json()
    missing = api_error(
        api.post(f"/api/webhooks/deliveries/{first}/retry"), 404, "DeliveryNotFound"
    )
    rest = api.post("/api/webhooks/deliveries/retry").json()
    pending = api.get("/api/webhooks/deliveries", params={"status": "pending", "tenant_id": "t1"})

    assert [d["id"] for d in listed] == [third, second, first]  # newest first
    assert listed[0]["endpoint"] == "https://crm.example/h"  # no credentials, no token
    assert listed[0]["status"] == "dead" and listed[0]["last_error"] == "HTTP 500"
    assert one == {"retried": [first]} and rest == {"retried": [second, third]}
    assert missing["message"].startswith(f"no dead webhook delivery {first}")
    webhook_ids = {d["id"]: d["webhook_id"] for d in listed}
    assert {d["id"]: d["webhook_id"] for d in pending.json()} == webhook_ids  # ids kept
    bad = api_error(api.get("/api/webhooks/deliveries?status=lost"), 422, "InvalidRequest")
    assert "status" in bad["message"]
