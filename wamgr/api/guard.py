"""The guard in front of the app: the API key and the body limit, checked before any body is
read.

FastAPI reads a request's body before it runs a route's dependencies, so a key check in a
dependency comes too late for a hostile client: it has made the server read (and hold) all
it sent. :class:`RequestGuard` is a pure ASGI middleware that acts on the request head alone:

- an ``/api`` request without the app's key is answered 401 at once;
- a body whose Content-Length is over ``max_body_bytes`` is answered 413 at once (a media
  upload, ``POST /api/tenants/{id}/messages/media``, has its own larger bound,
  ``max_media_bytes``: WhatsApp takes documents of up to 100 MB);
- a chunked body (no Content-Length) is read here, counting, and answered 413 as soon as it
  passes the limit; a body within it is handed on to the app.

An answer given before the body was read closes the connection (``connection: close``), so
the rest of the body is never read.

    app.add_middleware(RequestGuard, api_key=b"s3cret...", max_body_bytes=1024 * 1024)
"""

import hmac
import re

from loguru import logger
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wamgr.api.errors import error_response
from wamgr.errors import ApiKeyRequired, BodyTooLarge, WamgrError

#: Paths under this prefix need the API key (when the app has one).
PROTECTED_PREFIX = "/api"
#: The media upload route, whose body may be as large as ``max_media_bytes``.
MEDIA_UPLOAD_PATH = re.compile(r"/api/tenants/[^/]+/messages/media")


class _ClientLeft(Exception):
    """The client disconnected while its body was being read."""


class RequestGuard:
    """ASGI middleware: refuses a request without the key (401) or with a body over the
    limit (413) before the app, or anything else, reads its body."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        api_key: bytes | None,
        max_body_bytes: int,
        max_media_bytes: int | None = None,
    ):
        self.app = app
        self._api_key = api_key
        self._max_body_bytes = max_body_bytes
        self._max_media_bytes = max_media_bytes if max_media_bytes is not None else max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        has_body = "transfer-encoding" in headers or headers.get("content-length", b"0") != b"0"
        if self._api_key is not None and _is_protected(scope["path"]):
            given = _given_key(headers)
            if given is None or not hmac.compare_digest(given, self._api_key):
                await _refuse(ApiKeyRequired(given=given is not None), has_body, scope, send)
                return
        limit, setting = self._max_body_bytes, "max_body_bytes"
        if scope["method"] == "POST" and MEDIA_UPLOAD_PATH.fullmatch(scope["path"]):
            limit, setting = self._max_media_bytes, "max_media_bytes"
        if "transfer-encoding" in headers:  # it decides the framing, whatever the length says
            try:
                body = await self._read_body(receive, limit)
            except _ClientLeft:
                return  # nobody is left to answer
            if body is None:
                await _refuse(BodyTooLarge(limit, setting), True, scope, send)
                return
            receive = _replay(body, receive)
        elif int(headers.get("content-length", b"0")) > limit:
            await _refuse(BodyTooLarge(limit, setting), True, scope, send)
            return
        await self.app(scope, receive, send)

    async def _read_body(self, receive: Receive, limit: int) -> bytes | None:
        """The whole body of a chunked request, or None as soon as it passes the limit;
        _ClientLeft if the client leaves first."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise _ClientLeft
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _headers(scope: Scope) -> dict[str, bytes]:
    """The request's headers by lower-case name (the first of repeated ones)."""
    out: dict[str, bytes] = {}
    for name, value in scope["headers"]:
        out.setdefault(name.decode("latin-1").lower(), value)
    return out


def _is_protected(path: str) -> bool:
    return path == PROTECTED_PREFIX or path.startswith(PROTECTED_PREFIX + "/")


def _given_key(headers: dict[str, bytes]) -> bytes | None:
    """The key a request carries: ``X-Api-Key``, else ``Authorization: Bearer <key>``."""
    key = headers.get("x-api-key")
    if key:
        return key
    scheme, _, credentials = headers.get("authorization", b"").partition(b" ")
    if scheme.lower() == b"bearer" and credentials:
        return credentials
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` whole, then whatever the connection says next."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _refuse(error: WamgrError, body_unread: bool, scope: Scope, send: Send) -> None:
    """Answer ``error``; with a body unread, close the connection so it is never read."""
    logger.debug("HTTP {} {}: {}", scope["method"], scope["path"], error.http_status)
    headers = {"connection": "close"} if body_unread else None
    response = error_response(error, headers)
    await response(scope, _no_receive, send)


async def _no_receive() -> Message:
    raise RuntimeError("a refused request's body is not read")
