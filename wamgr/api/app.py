"""The FastAPI application of a ConnectionManager: the guard, the error mapping, the routers.

Every ``/api`` route needs the API key when one is configured; ``/metrics``, ``/docs`` and
``/openapi.json`` do not. ``/docs`` loads Swagger UI from files served here (the
fastapi-offline package ships them), never from a CDN. The operator dashboard
(:mod:`wamgr.web`) is served at ``/dashboard`` from the same app; ``/`` leads there.
The key and the body limit are checked by :class:`RequestGuard` in front of the app, before
any body is read; errors come out of the one mapping in
:mod:`wamgr.api.errors`.

    app = create_app(mgr, api_key="s3cret-of-16-chars")
    server = HttpServer(app, "127.0.0.1", 8080)   # wamgr.api.server
"""

from importlib import resources

from fastapi import APIRouter, Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from wamgr.api.dependencies import require_api_key
from wamgr.api.errors import add_error_handlers
from wamgr.api.guard import RequestGuard
from wamgr.api.routes import (
    health,
    locks,
    media,
    message_kinds,
    messages,
    pairing,
    tenants,
    webhooks,
)
from wamgr.api.schemas import ERROR_RESPONSES
from wamgr.manager import ConnectionManager
from wamgr.web.mount import mount_dashboard

#: Where the Swagger UI files of ``/docs`` are served.
DOCS_ASSETS = "/docs-assets"


def create_app(
    mgr: ConnectionManager, api_key: str | None = None, *, max_body_bytes: int | None = None
) -> FastAPI:
    """The FastAPI application of ``mgr``; ``/api`` routes need ``api_key`` when it is set.

    A request body longer than ``max_body_bytes`` (default: the manager's
    ``config.max_body_bytes``) is refused with 413.
    """
    if max_body_bytes is None:
        max_body_bytes = mgr.config.max_body_bytes
    app = FastAPI(
        title="wamgr",
        version="1",
        summary="Keeps many WhatsApp Web connections alive: one socket per account, always.",
        description="Every /api route needs the API key (X-Api-Key or Authorization: "
        "Bearer) when the server has one (WAMGR_API_KEY). Errors are JSON: "
        '{"error": <class>, "message": <what to do>}. A request body may have at most '
        f"{max_body_bytes} bytes (WAMGR_MAX_BODY_BYTES), else 413.",
        # /api/tenants/ is no route (404), not a redirect to /api/tenants.
        redirect_slashes=False,
        docs_url=None,  # served below, from local files
    )
    app.state.manager = mgr
    app.state.api_key = api_key.encode() if api_key else None
    add_error_handlers(app)
    app.add_middleware(
        RequestGuard,
        api_key=app.state.api_key,
        max_body_bytes=max_body_bytes,
        max_media_bytes=max(max_body_bytes, mgr.config.max_media_bytes),
    )

    # The guard has checked the key before any body was read; the routes declare it too
    # (their dependency), so /docs shows it and a route mounted without the guard keeps it.
    api = APIRouter(
        prefix="/api", dependencies=[Depends(require_api_key)], responses=ERROR_RESPONSES
    )
    for routes in (health, tenants, pairing, messages, message_kinds, media, locks, webhooks):
        api.include_router(routes.router)
    app.include_router(api)
    app.include_router(health.metrics_router)
    _serve_docs(app)
    mount_dashboard(app, mgr, app.state.api_key)
    return app


def _serve_docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI from files this server serves (it works with no internet)."""
    assets = resources.files("fastapi_offline") / "static"
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(assets)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        )
