"""Signing in to the dashboard: the API key is exchanged for a signed, expiring, HttpOnly,
SameSite=Strict cookie; a wrong key is refused with a message; forms need the session's
CSRF token and this server's origin; signing out ends the session in the browser."""

from __future__ import annotations

import httpx
import pytest
from freezegun import freeze_time
from starlette.requests import Request

from wamgr.web.session import COOKIE, SESSION_MAX_AGE_S, CrossSiteRequest, Sessions

from .conftest import API_KEY, csrf_of


@pytest.mark.slow
def test_sign_in_sign_out_and_what_the_cookie_promises(client: httpx.Client) -> None:
    away = client.get("/dashboard", params={"state": "backoff"})
    assert away.status_code == 303
    assert away.headers["location"] == "/dashboard/login?next=/dashboard%3Fstate%3Dbackoff"
    assert client.get("/dashboard/events").status_code == 401  # the script's paths: no redirect

    wrong = client.post("/dashboard/login", data={"key": "not-the-key"})
    assert wrong.status_code == 401
    assert "That is not the API key of this server" in wrong.text
    assert COOKIE not in wrong.cookies

    right = client.post("/dashboard/login", data={"key": API_KEY, "next": "/dashboard?page=2"})
    assert right.status_code == 303 and right.headers["location"] == "/dashboard?page=2"
    cookie = right.headers["set-cookie"].lower()
    for attribute in (
        "httponly",
        "samesite=strict",
        "path=/dashboard",
        f"max-age={SESSION_MAX_AGE_S}",
    ):
        assert attribute in cookie
    assert API_KEY.lower() not in cookie  # the key is exchanged, not stored

    fleet = client.get("/dashboard")
    assert fleet.status_code == 200 and "Sign out" in fleet.text

    refused = client.post("/dashboard/logout", data={"csrf": "0" * 64})
    assert refused.status_code == 403
    out = client.post("/dashboard/logout", data={"csrf": csrf_of(fleet.text)})
    assert out.status_code == 303 and out.headers["location"] == "/dashboard/login"
    assert client.get("/dashboard").status_code == 303


@pytest.mark.slow
def test_sign_in_leads_only_to_dashboard_pages(client: httpx.Client) -> None:
    for target in ("https://evil.example/", "//evil.example/dashboard", "/api/tenants"):
        answer = client.post("/dashboard/login", data={"key": API_KEY, "next": target})
        assert answer.headers["location"] == "/dashboard", target


@pytest.mark.slow
def test_a_form_from_another_site_is_refused_even_with_the_token(signed_in, mgr) -> None:
    mgr.connect("t1")
    token = csrf_of(signed_in.get("/dashboard/tenants/t1").text)

    for headers in ({"origin": "https://evil.example"}, {"sec-fetch-site": "cross-site"}):
        refused = signed_in.post(
            "/dashboard/tenants/t1/reconnect", data={"csrf": token}, headers=headers
        )
        assert refused.status_code == 403, headers
        assert "another site" in refused.text
    assert (
        signed_in.post(
            "/dashboard/login", data={"key": API_KEY}, headers={"origin": "null"}
        ).status_code
        == 403
    )

    done = signed_in.post("/dashboard/tenants/t1/reconnect", data={"csrf": token})
    assert done.status_code == 303


@pytest.mark.slow
def test_without_an_api_key_nobody_signs_in_but_forms_still_need_the_token(mgr, serve) -> None:
    server = serve(mgr, api_key=None)
    mgr.connect("t1")
    with httpx.Client(base_url=server.url, headers={"origin": server.url}) as http:
        assert http.get("/dashboard/login").headers["location"] == "/dashboard"
        page = http.get("/dashboard/tenants/t1")
        assert page.status_code == 200 and "Sign out" not in page.text
        assert http.post("/dashboard/tenants/t1/reconnect", data={}).status_code == 403
        token = csrf_of(page.text)
        ok = http.post("/dashboard/tenants/t1/reconnect", data={"csrf": token})
        assert ok.status_code == 303


def _request(cookie: str | None) -> Request:
    headers = [(b"host", b"testserver")]
    if cookie is not None:
        headers.append((b"cookie", f"{COOKIE}={cookie}".encode()))
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})


@pytest.mark.slow
def test_a_cookie_is_refused_when_expired_tampered_or_signed_with_another_key() -> None:
    sessions = Sessions(API_KEY.encode(), max_age_s=60)
    with freeze_time("2026-01-01 00:00:00"):
        cookie = sessions.issue()
    with freeze_time("2026-01-01 00:00:59"):
        session = sessions.read(_request(cookie))
        assert session is not None and session.csrf == sessions.csrf_token(session.sid)
        assert sessions.read(_request(cookie[:-2] + "xx")) is None
        assert Sessions(b"another-key-0123456789").read(_request(cookie)) is None
        # the same key after a restart: the session holds
        assert Sessions(API_KEY.encode(), max_age_s=60).read(_request(cookie)) is not None
    with freeze_time("2026-01-01 00:01:01"):
        assert sessions.read(_request(cookie)) is None


def test_a_post_needs_the_token_of_its_own_session() -> None:
    sessions = Sessions(API_KEY.encode())
    mine = sessions.read(_request(sessions.issue()))
    theirs = sessions.read(_request(sessions.issue()))
    assert mine is not None and theirs is not None and mine.csrf != theirs.csrf
    request = _request(None)
    sessions.check_post(request, mine, mine.csrf)
    for token in (theirs.csrf, None, "", "é" * 64):
        with pytest.raises(CrossSiteRequest):
            sessions.check_post(request, mine, token)
