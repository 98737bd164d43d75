"""The FastAPI application of a ConnectionManager: the key check, the error mapping, the routers.

Errors come out of ONE mapping: a WamgrError knows its ``http_status`` and its message; the
body is ``{"error": <class name>, "message": <what to do>}`` plus a few fields that help a
program (the holder's expiry of a busy lock, a tenant's state). Every ``/api`` route needs the
API key when one is configured; ``/metrics``, ``/docs`` and ``/openapi.json`` do not.

    app = create_app(mgr, api_key="s3cret")
    server = HttpServer(app, "127.0.0.1", 8080)   # wamgr.api.server
"""

from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from loguru import logger
from starlette.exceptions import HTTPException as StarletteHTTPException

from wamgr.api.dependencies import require_api_key
from wamgr.api.routes import health, locks, messages, pairing, tenants
from wamgr.api.schemas import ERROR_RESPONSES
from wamgr.errors import (
    HeldElsewhere,
    LockBusy,
    NotConnected,
    NotPairing,
    UnknownTenant,
    WamgrError,
)
from wamgr.manager import ConnectionManager


def create_app(mgr: ConnectionManager, api_key: str | None = None) -> FastAPI:
    """The FastAPI application of ``mgr``; ``/api`` routes need ``api_key`` when it is set."""
    app = FastAPI(
        title="wamgr",
        version="1",
        summary="Keeps many WhatsApp Web connections alive: one socket per account, always.",
        description="Every /api route needs the API key (X-Api-Key or Authorization: "
        "Bearer) when the server has one (WAMGR_API_KEY). Errors are JSON: "
        '{"error": <class>, "message": <what to do>}.',
    )
    app.state.manager = mgr
    app.state.api_key = api_key.encode() if api_key else None
    app.add_exception_handler(WamgrError, _wamgr_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)

    # The key check runs before any other dependency of a route (a tenant lookup, a body),
    # so a request without the key learns nothing but that it needs one.
    api = APIRouter(
        prefix="/api", dependencies=[Depends(require_api_key)], responses=ERROR_RESPONSES
    )
    for routes in (health, tenants, pairing, messages, locks):
        api.include_router(routes.router)
    app.include_router(api)
    app.include_router(health.metrics_router)
    return app


# --- errors -------------------------------------------------------------------------------


def _details(exc: WamgrError) -> dict[str, Any]:
    """Fields of an error that a program may want beside the message."""
    if isinstance(exc, LockBusy):
        return {
            "key": exc.key,
            "owner": exc.owner,
            "expires_at": exc.expires_at.isoformat() if exc.expires_at else None,
        }
    if isinstance(exc, NotConnected | NotPairing):
        return {"tenant_id": exc.tenant_id, "state": exc.state}
    if isinstance(exc, HeldElsewhere):
        return {"tenant_id": exc.tenant_id, "owner": exc.owner}
    if isinstance(exc, UnknownTenant):
        return {"tenant_id": exc.tenant_id}
    return {}


def _error_response(exc: WamgrError) -> JSONResponse:
    """The response of a wamgr error: its own ``http_status``, its class and message."""
    body = {"error": type(exc).__name__, "message": exc.format_message(), **_details(exc)}
    headers = {"www-authenticate": "Bearer"} if exc.http_status == 401 else None
    return JSONResponse(body, status_code=exc.http_status, headers=headers)


async def _wamgr_error(_: Request, exc: WamgrError) -> JSONResponse:
    if exc.http_status >= 500:
        logger.warning("HTTP {}: {}", exc.http_status, exc.format_message())
    return _error_response(exc)


async def _invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
    """A body, query or path that does not fit the route: 422 naming each problem."""
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()))
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    return JSONResponse(
        {
            "error": "InvalidRequest",
            "message": "; ".join(problems) + " (see /docs for what each route takes)",
        },
        status_code=422,
    )


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """No such route (404) or method (405), in the same JSON shape as every other error."""
    if exc.status_code == 404:
        message = f"no route {request.method} {request.url.path}; the routes are at /docs"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}; see /docs"
    else:
        message = str(exc.detail)
    return JSONResponse(
        {"error": "HTTPError", "message": message},
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A bug: 500, logged once here with its traceback."""
    logger.opt(exception=exc).error("HTTP {} {} failed", request.method, request.url.path)
    return JSONResponse(
        {
            "error": "InternalError",
            "message": f"{type(exc).__name__}: the server failed; its log says more",
        },
        status_code=500,
    )
