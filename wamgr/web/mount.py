"""Mounting the dashboard on the HTTP API's app: its routes, its static files, its errors.

    app = create_app(mgr, api_key)      # wamgr.api.app mounts the dashboard
    mount_dashboard(app, mgr, api_key)  # what it calls: /dashboard, /dashboard/static

Pages and forms run behind the session (see :mod:`wamgr.web.session`), not behind the API
key check of ``/api``; a page asked for without a session leads to the sign-in page, the
live stream and the ping answer 401. The wamgr errors a page meets (an unknown tenant, a
stopped manager) are shown as a page, not as the API's JSON.
"""

from __future__ import annotations

from importlib import resources
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from wamgr.errors import WamgrError
from wamgr.manager import ConnectionManager
from wamgr.web import actions, auth, pages
from wamgr.web.context import Dashboard
from wamgr.web.session import CrossSiteRequest, SignInRequired
from wamgr.web.views import render

#: Paths answered 401 without a session, instead of a redirect to the sign-in page: what
#: the page's script fetches.
_SCRIPT_PATHS = ("/dashboard/events", "/dashboard/ping")


def mount_dashboard(app: FastAPI, mgr: ConnectionManager, api_key: bytes | None) -> Dashboard:
    """Serve the dashboard of ``mgr`` at ``/dashboard`` of ``app`` (``/`` leads there);
    signing in takes ``api_key`` when it is set. Call it after the app's own error
    handlers are in place: a wamgr error outside the dashboard still goes to them."""
    dashboard = Dashboard(mgr, api_key)
    app.state.dashboard = dashboard
    static = resources.files("wamgr.web") / "static"
    app.mount("/dashboard/static", StaticFiles(directory=str(static)), name="dashboard-static")
    for routes in (auth, pages, actions):
        app.include_router(routes.router)

    @app.get("/", include_in_schema=False)
    def root() -> Response:
        return RedirectResponse("/dashboard", status_code=307)

    app.add_exception_handler(SignInRequired, _sign_in)  # type: ignore[arg-type]
    api_handler = app.exception_handlers.get(WamgrError)

    async def wamgr_error(request: Request, exc: WamgrError) -> Response:
        if is_dashboard(request) or api_handler is None:
            return error_page(request, exc)
        return await api_handler(request, exc)

    app.add_exception_handler(WamgrError, wamgr_error)  # type: ignore[arg-type]
    app.add_exception_handler(CrossSiteRequest, _cross_site)  # type: ignore[arg-type]
    return dashboard


def is_dashboard(request: Request) -> bool:
    """Whether ``request`` is for a dashboard page (its errors are shown as pages)."""
    path = request.url.path
    return path == "/dashboard" or path.startswith("/dashboard/")


def error_page(request: Request, exc: WamgrError) -> Response:
    """A wamgr error met by a dashboard page, as a page with its status."""
    return render(
        request,
        "error.html",
        status_code=exc.http_status,
        page_name="error",
        title=type(exc).__name__,
        message=exc.format_message(),
    )


async def _sign_in(request: Request, _exc: SignInRequired) -> Response:
    if request.url.path in _SCRIPT_PATHS:
        return PlainTextResponse("sign in first", status_code=401)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/dashboard/login?next={quote(target)}", status_code=303)


async def _cross_site(request: Request, _exc: CrossSiteRequest) -> Response:
    return render(
        request,
        "error.html",
        status_code=403,
        page_name="error",
        title="Refused",
        message="This form came from another site, or from a page older than your session. "
        "Reload the page and try again.",
    )
