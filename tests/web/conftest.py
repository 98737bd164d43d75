"""Fixtures of the dashboard tests: the app of a manager, a TestClient on it, the server
for the browser, and Chromium (Debian's, through Playwright)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from wamgr import ConnectionManager
from wamgr.api.app import create_app
from wamgr.api.server import HttpServer

API_KEY = "dashboard-key-0123456789"
CHROMIUM = os.environ.get("WAMGR_CHROMIUM", "/usr/bin/chromium")
#: Where the tests save their screenshots (the docs keep the best two).
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
#: Seconds a browser test waits for a change to show.
LIVE_S = 2.0

_CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token in a page's forms."""
    found = _CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


Serve = Callable[..., HttpServer]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """``serve(mgr, api_key=API_KEY)``: the app on 127.0.0.1 (a free port); stopped at the end."""
    servers: list[HttpServer] = []

    def start(mgr: ConnectionManager, api_key: str | None = API_KEY) -> HttpServer:
        server = HttpServer(create_app(mgr, api_key), "127.0.0.1", 0, name="test-dashboard")
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def client(mgr: ConnectionManager, serve: Serve) -> Iterator[httpx.Client]:
    """An HTTP client of ``mgr``'s dashboard (API key set), not signed in. Its forms send
    the server's own Origin, as a browser's would."""
    server = serve(mgr)
    # Plain HTTP on loopback: verify=False spares building a TLS context (~0.1 s a client).
    origin = {"origin": server.url}
    with httpx.Client(base_url=server.url, headers=origin, timeout=15.0, verify=False) as http:
        yield http


@pytest.fixture
def signed_in(client: httpx.Client) -> httpx.Client:
    """``client``, signed in."""
    answer = client.post("/dashboard/login", data={"key": API_KEY})
    assert answer.status_code == 303, answer.text
    return client


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Headless Chromium (Debian's package) driven by Playwright; skipped without it."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api")
    # A loaded machine may take seconds to parse Swagger UI; a test that promises a time
    # (a live change within 2 s) says so in its own assertion.
    sync_api.expect.set_options(timeout=10_000)
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    """A fresh browser page (its own cookies), closed at the end."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    yield tab
    context.close()
