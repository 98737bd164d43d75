"""The dashboard in a real browser (Debian's Chromium driven by Playwright): signing in and
out, live states without reload, pairing from the screen, the buttons, a fleet of 10,000,
and the page coming back by itself after the server restarts. The screenshots it takes go
to build/screenshots (the docs keep the best two)."""

from __future__ import annotations

import time

import pytest

from wamgr.api.app import create_app
from wamgr.api.server import HttpServer
from wamgr.status import TenantState
from wamgr.transport.sim import SimWhatsApp

from .conftest import API_KEY, LIVE_S, SCREENSHOTS

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = pytest.mark.slow  # a real browser: seconds to start, and each page load

CONNECTED = TenantState.CONNECTED
LIVE_MS = LIVE_S * 1000


def sign_in(page, server: HttpServer, path: str = "/dashboard") -> None:
    """Sign in with the right key and land on ``path``."""
    page.goto(f"{server.url}{path}")
    page.fill("#key", API_KEY)
    page.click("form button[type=submit]")
    page.wait_for_url(f"{server.url}{path}")
    expect(page.locator("#live")).to_have_attribute("data-state", "open")


def shot(page, name: str) -> None:
    """Save what the browser shows (the window, not the whole page) as ``name``.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def test_sign_in_refuses_a_wrong_key_and_sign_out_ends_the_session(mgr, serve, page) -> None:
    server = serve(mgr)
    page.goto(f"{server.url}/")
    expect(page).to_have_url(f"{server.url}/dashboard/login?next=/dashboard")

    page.fill("#key", "not-the-key")
    page.click("form button[type=submit]")
    expect(page.locator("#login-error")).to_contain_text("not the API key")

    page.fill("#key", API_KEY)
    page.click("form button[type=submit]")
    expect(page.locator("#fleet")).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "wamgr_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    page.click("text=Sign out")
    expect(page).to_have_url(f"{server.url}/dashboard/login")
    page.goto(f"{server.url}/dashboard")
    expect(page.locator("#key")).to_be_visible()


def test_a_drop_shows_backoff_then_connected_without_reload(
    mgr, serve, page, sim: SimWhatsApp, clock
) -> None:
    for tenant in ("t1", "t2"):
        mgr.connect(tenant)
    jid = mgr.wait_for("t1", CONNECTED, timeout=5).jid
    mgr.wait_for("t2", CONNECTED, timeout=5)
    server = serve(mgr)
    sign_in(page, server)
    row = page.locator('tr[data-tenant="t1"]')
    expect(row).to_have_attribute("data-state", "connected")
    page.evaluate("window.notReloaded = true")

    sim.drop(jid, "network")
    expect(row).to_have_attribute("data-state", "backoff", timeout=LIVE_MS)
    expect(row.locator(".state")).to_have_text("↻ backoff")  # the name, not only a colour
    expect(row.locator('[data-field="last_error"]')).to_contain_text("connection reset")
    expect(page.locator('[data-count="backoff"]')).to_have_text("1")

    clock.advance(3.1)  # the first backoff delay
    expect(row).to_have_attribute("data-state", "connected", timeout=LIVE_MS)
    expect(page.locator('[data-count="backoff"]')).to_have_text("0")
    assert page.evaluate("window.notReloaded") is True


def test_a_change_on_another_instance_shows_on_this_ones_page(
    make_manager, serve, page, sim: SimWhatsApp
) -> None:
    here = make_manager()
    there = make_manager()  # another instance on the same database
    there.connect("far-1")
    jid = there.wait_for("far-1", CONNECTED, timeout=5).jid
    server = serve(here)
    sign_in(page, server)
    row = page.locator('tr[data-tenant="far-1"]')
    expect(row.locator('[data-field="owner"]')).to_have_text("inst-1")

    sim.drop(jid, "network")
    expect(row).to_have_attribute("data-state", "backoff", timeout=LIVE_MS)


def test_the_qr_is_on_screen_and_scanning_it_connects_the_page(
    make_manager, serve, page, clock
) -> None:
    phone = SimWhatsApp(auto_pair=False, clock=clock)
    mgr = make_manager(transport=phone)
    mgr.connect("shop-1")
    mgr.wait_for("shop-1", TenantState.PAIRING, timeout=5)
    server = serve(mgr)
    sign_in(page, server, "/dashboard/tenants/shop-1")

    qr = page.locator("img#qr")
    expect(qr).to_be_visible()
    page.wait_for_function("document.getElementById('qr').naturalWidth > 100")
    expect(page.locator("#phone")).to_be_visible()  # the pair-code form
    shot(page, "tenant-pairing")

    phone.scan(phone.pending_pairings()[0])
    expect(page.locator("#tenant-state .state")).to_have_text("● connected", timeout=LIVE_MS)
    expect(page.locator(".timeline")).to_contain_text("connected")
    shot(page, "tenant")


def test_the_buttons_act_and_a_destructive_one_asks_first(
    mgr, serve, page, sim: SimWhatsApp
) -> None:
    mgr.connect("t1")
    jid = mgr.wait_for("t1", CONNECTED, timeout=5).jid
    server = serve(mgr)
    sign_in(page, server, "/dashboard/tenants/t1")

    page.click("button[value=reconnect]")
    expect(page.locator(".flash")).to_contain_text("reconnect: done")
    mgr.wait_for("t1", CONNECTED, timeout=5)
    assert len(sim.sockets(jid)) == 2 and sim.max_concurrent_sockets(jid) == 1

    questions: list[str] = []

    def dismiss(dialog) -> None:
        questions.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.click("button[value=disconnect]")
    assert questions and "Disconnect t1?" in questions[0]
    assert mgr.status("t1").state is CONNECTED and sim.open_sockets(jid) == 1

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button[value=disconnect]")
    expect(page.locator(".flash")).to_contain_text("disconnect: done")
    expect(page.locator("#tenant-state .state")).to_have_text("○ stopped")
    assert sim.open_sockets(jid) == 0


def _fleet_of(mgr, count: int) -> None:
    """``count`` tenants in every state, written straight to the store (no actors), the
    running ones under live leases of two instances."""
    with mgr.runtime.db.connection() as conn:
        conn.execute(
            "INSERT INTO wamgr_tenants (tenant_id, state, owner, attempt, next_retry_at,"
            " last_error)"
            " SELECT 'shop-' || lpad(n::text, 5, '0'), s.state,"
            "  CASE WHEN s.state IN ('connected', 'backoff', 'pairing', 'connecting', 'banned')"
            "   THEN 'inst-' || (mod(n, 2)) END,"
            "  CASE WHEN s.state = 'backoff' THEN 1 + mod(n, 6) ELSE 0 END,"
            "  CASE WHEN s.state IN ('backoff', 'banned')"
            "   THEN now() + (3 + mod(n, 40)) * interval '1 s' END,"
            "  CASE s.state WHEN 'backoff' THEN 'read tcp: connection reset by peer'"
            "   WHEN 'failed' THEN '405 client outdated'"
            "   WHEN 'conflict' THEN 'replaced by another client (440)'"
            "   WHEN 'logged_out' THEN '401 logged out' END"
            " FROM generate_series(1, %s) AS n"
            " CROSS JOIN LATERAL (SELECT CASE WHEN mod(n, 97) = 0 THEN 'failed'"
            "   WHEN mod(n, 89) = 0 THEN 'conflict' WHEN mod(n, 61) = 0 THEN 'logged_out'"
            "   WHEN mod(n, 13) = 0 THEN 'backoff' WHEN mod(n, 53) = 0 THEN 'pairing'"
            "   WHEN mod(n, 71) = 0 THEN 'banned' WHEN mod(n, 11) = 0 THEN 'stopped'"
            "   ELSE 'connected' END AS state) s",
            (count,),
        )
        conn.execute(
            "INSERT INTO wamgr_leases (tenant_id, owner, token, expires_at)"
            " SELECT tenant_id, owner, nextval('wamgr_lease_tokens'), now() + interval '30 s'"
            " FROM wamgr_tenants WHERE owner IS NOT NULL"
        )


def test_ten_thousand_tenants_show_their_first_screen_within_2_s(mgr, serve, page) -> None:
    _fleet_of(mgr, 10_000)
    server = serve(mgr)
    sign_in(page, server)

    started = time.monotonic()
    page.goto(f"{server.url}/dashboard")
    expect(page.locator("tr[data-tenant]")).to_have_count(50)
    took = time.monotonic() - started
    assert took < 2.0, f"the first screen took {took:.2f} s"
    expect(page.locator('[data-count="all"]')).to_have_text("10,000")
    expect(page.locator("#summary")).to_contain_text("of 10,000")
    shot(page, "fleet")

    page.click("a.count.state-backoff")
    expect(page.locator("tr[data-tenant]").first).to_have_attribute("data-state", "backoff")
    page.fill("#q", "shop-0999")
    page.click("form.search button")
    expect(page.locator("tr[data-tenant]")).to_have_count(1)  # shop-09997, the one in backoff


def test_the_page_reconnects_by_itself_after_the_server_restarts(
    mgr, serve, page, sim: SimWhatsApp
) -> None:
    mgr.connect("t1")
    jid = mgr.wait_for("t1", CONNECTED, timeout=5).jid
    first = serve(mgr)
    sign_in(page, first)
    row = page.locator('tr[data-tenant="t1"]')
    expect(row).to_have_attribute("data-state", "connected")

    first.stop()
    expect(page.locator("#live")).to_have_attribute("data-state", "lost")
    sim.drop(jid, "network")  # while nobody serves the page
    mgr.wait_for("t1", TenantState.BACKOFF, timeout=5)
    # a new app on the same port, as a restarted server: the session cookie still holds
    second = HttpServer(create_app(mgr, API_KEY), "127.0.0.1", first.port).start()
    try:
        expect(page.locator("#live")).to_have_attribute("data-state", "open", timeout=10_000)
        expect(row).to_have_attribute("data-state", "backoff", timeout=LIVE_MS)
    finally:
        page.close()
        second.stop()


def test_every_page_and_the_api_docs_load_only_from_this_server(mgr, serve, page) -> None:
    mgr.connect("t1")
    server = serve(mgr)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    sign_in(page, server)
    for path in ("/dashboard/tenants/t1", "/dashboard/instances", "/dashboard/webhooks"):
        page.goto(f"{server.url}{path}")
        expect(page.locator("main h1, main .tenant-head h1").first).to_be_visible()
    page.goto(f"{server.url}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("wamgr")
    elsewhere = [url for url in requested if not url.startswith(server.url)]
    assert not elsewhere, elsewhere
