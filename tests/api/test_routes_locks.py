"""Processing locks through the API: claim, extend, release, and the 409s of a stale token."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_processing_locks_claim_extend_release(mgr, serve_api, api_error) -> None:
    api = serve_api(mgr)
    key = "shop-1/15550001111"  # a slash is fine

    claimed = api.post(f"/api/locks/{key}", json={"ttl": 30})
    busy = api.post(f"/api/locks/{key}", json={"ttl": 30})

    assert claimed.status_code == 201
    token = claimed.json()["token"]
    assert claimed.json()["key"] == key
    body = api_error(busy, 409, "LockBusy")
    assert body["expires_at"] == claimed.json()["expires_at"].replace("Z", "+00:00")
    assert body["owner"] == "inst-0"

    extended = api.post(f"/api/locks/{key}/extend", json={"token": token, "ttl": 60})
    assert extended.status_code == 200
    assert extended.json()["expires_at"] > claimed.json()["expires_at"]
    stale = api.post(f"/api/locks/{key}/extend", json={"token": token + 100, "ttl": 60})
    assert "claim the key again" in api_error(stale, 409, "LockNotHeld")["message"]

    api_error(api.delete(f"/api/locks/{key}", params={"token": token + 100}), 409, "LockNotHeld")
    released = api.delete(f"/api/locks/{key}", params={"token": token})
    assert released.status_code == 204 and released.content == b""
    api_error(api.delete(f"/api/locks/{key}", params={"token": token}), 409, "LockNotHeld")

    again = api.post(f"/api/locks/{key}")  # no body: 30 s
    assert again.status_code == 201 and again.json()["token"] > token


def test_a_ttl_or_token_that_is_not_a_json_number_is_422(mgr, serve_api, api_error) -> None:
    api = serve_api(mgr)
    for body in ({"ttl": True}, {"ttl": "30"}):
        api_error(api.post("/api/locks/shop-1", json=body), 422, "InvalidRequest")
    claimed = api.post("/api/locks/shop-1", json={"ttl": 30})
    assert claimed.status_code == 201, claimed.text
    api_error(
        api.post("/api/locks/shop-1/extend", json={"token": True, "ttl": 30}), 422, "InvalidRequest"
    )
