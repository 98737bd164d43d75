"""The one mapping of errors to HTTP responses, and the app's handlers that use it.

A WamgrError knows its ``http_status`` and its message; the body is ``{"error": <class name>,
"message": <what to do>}`` plus a few fields that help a program (the holder's expiry of a
busy lock, a tenant's state, the field that was wrong). A request that does not fit a route
is ``InvalidRequest`` (422), a missing route or method ``HTTPError`` (404, 405), and a bug
``InternalError`` (500), logged once with its traceback.
"""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from loguru import logger
from starlette.exceptions import HTTPException as StarletteHTTPException

from wamgr.errors import (
    HeldElsewhere,
    HolderNotAnswering,
    InvalidRecipient,
    InvalidSetting,
    LockBusy,
    MediaRefused,
    NotConnected,
    NotPairing,
    UnknownTenant,
    WamgrError,
)
from wamgr.message_errors import InvalidMessage, MessageStateConflict


def add_error_handlers(app: FastAPI) -> None:
    """Make ``app`` answer every error in wamgr's JSON shape."""
    app.add_exception_handler(WamgrError, _wamgr_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)


def error_response(exc: WamgrError, headers: dict[str, str] | None = None) -> JSONResponse:
    """The response of a wamgr error: its own ``http_status``, its class and message, and
    ``headers`` beside the ones it needs (``www-authenticate`` on a 401)."""
    body = {"error": type(exc).__name__, "message": exc.format_message(), **_details(exc)}
    headers = dict(headers or {})
    if exc.http_status == 401:
        headers["www-authenticate"] = "Bearer"
    return JSONResponse(body, status_code=exc.http_status, headers=headers or None)


def _details(exc: WamgrError) -> dict[str, Any]:
    """Fields of an error that a program may want beside the message."""
    if isinstance(exc, LockBusy):
        return {
            "key": exc.key,
            "owner": exc.owner,
            "expires_at": exc.expires_at.isoformat() if exc.expires_at else None,
        }
    if isinstance(exc, NotConnected):
        return {"tenant_id": exc.tenant_id, "state": exc.state, "owner": exc.owner}
    if isinstance(exc, NotPairing):
        return {"tenant_id": exc.tenant_id, "state": exc.state}
    if isinstance(exc, HeldElsewhere):
        return {"tenant_id": exc.tenant_id, "owner": exc.owner}
    if isinstance(exc, HolderNotAnswering):
        return {"tenant_id": exc.tenant_id, "holder": exc.holder}
    if isinstance(exc, UnknownTenant):
        return {"tenant_id": exc.tenant_id}
    if isinstance(exc, InvalidRecipient | InvalidMessage | InvalidSetting | MediaRefused):
        return {"field": exc.field}
    if isinstance(exc, MessageStateConflict):
        return {"tenant_id": exc.tenant_id, "message_id": exc.message_id, "status": exc.status}
    return {}


async def _wamgr_error(_: Request, exc: WamgrError) -> JSONResponse:
    if exc.http_status >= 500:
        logger.warning("HTTP {}: {}", exc.http_status, exc.format_message())
    return error_response(exc)


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
    """No such route (404) or method (405), in the same JSON shape as every other error; a
    body that cannot be parsed (FastAPI's 400) is 422 like every other bad input."""
    if exc.status_code == 400:
        return JSONResponse(
            {
                "error": "InvalidRequest",
                "message": f"body: {exc.detail} (send JSON in UTF-8; see /docs)",
            },
            status_code=422,
        )
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
