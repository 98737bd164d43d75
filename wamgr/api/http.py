"""The HTTP API: FastAPI routes over the ConnectionManager, served by uvicorn on a thread.

Routes are plain (sync) functions: FastAPI runs them on its thread pool, where blocking on
the facade (every call bounded by ``call_timeout``) is fine. Errors come out of ONE handler:
a WamgrError knows its ``http_status`` and its message; the body is
``{"error": <class name>, "message": <what to do>}`` plus a few fields that help a program
(the holder's expiry of a busy lock, a tenant's state). Every ``/api`` route needs the API
key when one is configured; ``/metrics``, ``/docs`` and ``/openapi.json`` do not.

    app = create_app(mgr, api_key="s3cret")
    server = HttpServer(app, "127.0.0.1", 8080)   # binds now: a busy port fails here
    server.start()
    ...
    server.stop(timeout=5)
"""

import hmac
import ipaddress
import socket
import threading
from collections import Counter
from datetime import datetime
from typing import Annotated, Any, Literal

import uvicorn
from fastapi import APIRouter, Body, Depends, FastAPI, Query, Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from loguru import logger
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from wamgr import qr as pairing
from wamgr.errors import (
    ApiKeyRequired,
    ConfigError,
    DatabaseUnavailable,
    HeldElsewhere,
    LockBusy,
    LockNotHeld,
    NotConnected,
    NotPairing,
    UnknownTenant,
    WamgrError,
)
from wamgr.manager import ConnectionManager
from wamgr.status import TenantState, TenantStatus
from wamgr.store.locks import Claim, validate_lock_key, validate_seconds

#: Seconds the server gives requests under way to finish when it stops.
GRACEFUL_STOP_S = 3.0

# --- bodies -------------------------------------------------------------------------------


class TenantOut(BaseModel):
    """A tenant's status (the fields of TenantStatus)."""

    tenant_id: str
    state: TenantState
    jid: str | None = None
    owner: str | None = Field(None, description="The instance that runs it")
    attempt: int = 0
    next_retry_at: datetime | None = None
    last_error: str | None = None
    updated_at: datetime | None = None


class HealthOut(BaseModel):
    instance_id: str
    database: str = Field(description='"ok", or what is wrong with it')
    tenants: dict[str, int] = Field(description="Tenants this instance runs, by state")
    leases_held: int | None = Field(description="Unexpired leases of this instance")


class ActiveOut(BaseModel):
    active: bool


class PairCodeIn(BaseModel):
    phone: str = Field(description="International number, country code first", min_length=1)


class PairCodeOut(BaseModel):
    code: str


class MessageIn(BaseModel):
    to: str = Field(min_length=1, description="A phone number or a JID")
    text: str = Field(min_length=1)


class MessageOut(BaseModel):
    message_id: str


class LockIn(BaseModel):
    ttl: float = Field(30.0, description="Seconds the claim lasts unless extended")


class ExtendIn(BaseModel):
    token: int
    ttl: float = Field(30.0, description="Seconds from now")


class LockOut(BaseModel):
    key: str
    token: int = Field(description="Fencing token: grows with every claim")
    expires_at: datetime


class ErrorOut(BaseModel):
    error: str = Field(description="The error's class, e.g. UnknownTenant")
    message: str = Field(description="What went wrong and what to do")


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (401, 404, 409, 422, 503, 504)
}

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
    body = {"error": type(exc).__name__, "message": exc.format_message(), **_details(exc)}
    headers = {"www-authenticate": "Bearer"} if exc.http_status == 401 else None
    return JSONResponse(body, status_code=exc.http_status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(WamgrError)
    async def wamgr_error(_: Request, exc: WamgrError) -> JSONResponse:
        if exc.http_status >= 500:
            logger.warning("HTTP {}: {}", exc.http_status, exc.format_message())
        return _error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
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

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
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

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.opt(exception=exc).error("HTTP {} {} failed", request.method, request.url.path)
        return JSONResponse(
            {
                "error": "InternalError",
                "message": f"{type(exc).__name__}: the server failed; its log says more",
            },
            status_code=500,
        )


# --- the app ------------------------------------------------------------------------------


def _tenant(status: TenantStatus) -> dict[str, Any]:
    return status.to_json()


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
    _install_error_handlers(app)
    key_header = APIKeyHeader(name="X-Api-Key", auto_error=False)
    bearer = HTTPBearer(auto_error=False)
    expected = api_key.encode() if api_key else None

    def require_key(
        given: Annotated[str | None, Security(key_header)],
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    ) -> None:
        if expected is None:
            return
        key = given if given is not None else (credentials.credentials if credentials else None)
        if key is None:
            raise ApiKeyRequired(given=False)
        if not hmac.compare_digest(key.encode(), expected):
            raise ApiKeyRequired(given=True)

    api = APIRouter(prefix="/api", dependencies=[Depends(require_key)], responses=_ERRORS)
    me = mgr.config.instance_id

    def command_answer(status: TenantStatus | None, tenant_id: str, response: Response) -> Any:
        if status is None:
            raise UnknownTenant(tenant_id)
        if status.owner not in (None, me):
            response.status_code = 202  # it runs on another instance: sent there
        return _tenant(status)

    # --- health ---

    @api.get("/status", response_model=HealthOut, tags=["health"])
    def health(response: Response) -> Any:
        """Health of this instance: 200, or 503 when the database is unreachable."""
        tenants = Counter(str(s.state) for s in mgr.local_statuses())
        database, leases = "ok", None
        try:
            mgr.check_database()
            leases = mgr.leases_held()
        except DatabaseUnavailable as exc:
            database = exc.format_message()
            response.status_code = 503
        return {
            "instance_id": me,
            "database": database,
            "tenants": dict(sorted(tenants.items())),
            "leases_held": leases,
        }

    # --- tenants ---

    @api.get("/tenants", response_model=list[TenantOut], tags=["tenants"])
    def list_tenants() -> Any:
        """Every known tenant, live where this instance runs it, else as stored."""
        return [_tenant(s) for s in mgr.statuses()]

    @api.put(
        "/tenants/{tenant_id}",
        response_model=TenantOut,
        status_code=201,
        tags=["tenants"],
        responses={200: {"model": TenantOut, "description": "Known already"}},
    )
    def put_tenant(tenant_id: str, response: Response) -> Any:
        """Create the tenant (201) or keep it (200), wanted connected, and connect it."""
        known = mgr.tenants_store is not None and mgr.tenants_store.get(tenant_id) is not None
        status = mgr.connect(tenant_id)
        if known:
            response.status_code = 200
        return _tenant(status)

    @api.get("/tenants/{tenant_id}", response_model=TenantOut, tags=["tenants"])
    def get_tenant(tenant_id: str) -> Any:
        """The tenant's status: live if this instance runs it, else as stored."""
        return _tenant(mgr.status(tenant_id))

    @api.delete("/tenants/{tenant_id}", response_model=TenantOut, tags=["tenants"])
    def delete_tenant(
        tenant_id: str,
        response: Response,
        logout: Annotated[bool, Query(description="Unlink the device from the phone")] = False,
    ) -> Any:
        """Stop the tenant: close its link (logging out first with ``logout=true``) and want
        it stopped. It stays known, with its device unless logged out, so a PUT resumes it.
        202 when another instance runs it (the command was sent there)."""
        mgr.status(tenant_id)
        return command_answer(mgr.remove(tenant_id, do_logout=logout), tenant_id, response)

    @api.post("/tenants/{tenant_id}/connect", response_model=TenantOut, tags=["tenants"])
    def connect(tenant_id: str, response: Response) -> Any:
        """Connect the tenant (never a second socket); also the way out of conflict, failed
        and logged_out. 202 with its status when another instance runs it."""
        mgr.status(tenant_id)
        return command_answer(mgr.connect(tenant_id), tenant_id, response)

    @api.post("/tenants/{tenant_id}/reconnect", response_model=TenantOut, tags=["tenants"])
    def reconnect(tenant_id: str, response: Response) -> Any:
        """Close the link (no logout) and open a new one; sent to the instance that runs it."""
        mgr.status(tenant_id)
        return command_answer(mgr.reconnect(tenant_id), tenant_id, response)

    @api.post("/tenants/{tenant_id}/disconnect", response_model=TenantOut, tags=["tenants"])
    def disconnect(tenant_id: str, response: Response) -> Any:
        """Close the link without logout and want the tenant stopped."""
        mgr.status(tenant_id)
        return command_answer(mgr.remove(tenant_id, do_logout=False), tenant_id, response)

    @api.post("/tenants/{tenant_id}/logout", response_model=TenantOut, tags=["tenants"])
    def logout(tenant_id: str, response: Response) -> Any:
        """Unlink the device from the phone, clear its credentials, want it stopped."""
        mgr.status(tenant_id)
        return command_answer(mgr.remove(tenant_id, do_logout=True), tenant_id, response)

    @api.get("/tenants/{tenant_id}/active", response_model=ActiveOut, tags=["tenants"])
    def active(tenant_id: str) -> Any:
        """Whether this instance has a connected link for the tenant."""
        mgr.status(tenant_id)
        return {"active": mgr.is_connection_active(tenant_id)}

    # --- pairing ---

    @api.get(
        "/tenants/{tenant_id}/qr",
        tags=["pairing"],
        response_class=Response,
        responses={
            200: {
                "content": {media: {} for media in pairing.MEDIA_TYPES.values()},
                "description": "The QR to scan with the phone (Linked devices)",
            }
        },
    )
    def qr(tenant_id: str, format: Literal["png", "svg", "text"] = "png") -> Response:
        """The pairing QR while the tenant is pairing on this instance; 409 otherwise."""
        code = mgr.qr(tenant_id)
        if code is None:
            status = mgr.status(tenant_id)
            if status.owner not in (None, me) and status.state is TenantState.PAIRING:
                raise HeldElsewhere(tenant_id, status.owner, "get its QR")
            raise NotPairing(tenant_id, str(status.state))
        content = pairing.render(code, format)
        return Response(
            content,
            media_type=pairing.MEDIA_TYPES[format],
            headers={"cache-control": "no-store"},
        )

    @api.post("/tenants/{tenant_id}/pair-code", response_model=PairCodeOut, tags=["pairing"])
    def pair_code(tenant_id: str, body: PairCodeIn) -> Any:
        """A code to type on the phone instead of scanning the QR, while pairing."""
        mgr.status(tenant_id)
        return {"code": mgr.pair_code(tenant_id, body.phone)}

    # --- messages ---

    @api.post(
        "/tenants/{tenant_id}/messages",
        response_model=MessageOut,
        status_code=202,
        tags=["messages"],
    )
    def send_message(tenant_id: str, body: MessageIn) -> Any:
        """Send a text message; 409 unless the tenant is connected on this instance."""
        mgr.status(tenant_id)
        return {"message_id": mgr.send_text(tenant_id, body.to, body.text)}

    # --- processing locks ---

    @api.post("/locks/{key:path}/extend", response_model=LockOut, tags=["locks"])
    def extend_lock(key: str, body: ExtendIn) -> Any:
        """Make a held claim last ``ttl`` more seconds; 409 if the token no longer holds it."""
        key = validate_lock_key(key)
        claim = Claim(mgr.locks, key, body.token, None)  # type: ignore[arg-type]
        if not claim.extend(body.ttl):
            raise LockNotHeld(key, body.token)
        return {"key": key, "token": claim.token, "expires_at": claim.expires_at}

    @api.post("/locks/{key:path}", response_model=LockOut, status_code=201, tags=["locks"])
    def claim_lock(key: str, body: Annotated[LockIn | None, Body()] = None) -> Any:
        """Claim ``key`` for ``ttl`` seconds (30 without a body): 201 with the token, or 409
        with the holder's expiry."""
        locks = mgr.locks
        ttl = validate_seconds("ttl", body.ttl if body is not None else 30.0)
        claim = locks.claim(key, ttl)
        if claim is None:
            holder = locks.holder(key)
            if holder is None:
                raise LockBusy(key, 0.0, None, None)
            raise LockBusy(key, 0.0, holder.expires_at, holder.owner)
        return {"key": claim.key, "token": claim.token, "expires_at": claim.expires_at}

    @api.delete("/locks/{key:path}", status_code=204, tags=["locks"])
    def release_lock(key: str, token: Annotated[int, Query()]) -> Response:
        """Release the claim holding ``token``: 204, or 409 when the token is stale."""
        key = validate_lock_key(key)
        if not Claim(mgr.locks, key, token, None).release():  # type: ignore[arg-type]
            raise LockNotHeld(key, token)
        return Response(status_code=204)

    app.include_router(api)

    @app.get("/metrics", tags=["metrics"], response_class=Response)
    def metrics() -> Response:
        """Prometheus metrics of this instance (text format)."""
        from wamgr.api.metrics import CONTENT_TYPE

        return Response(mgr.metrics.render(), media_type=CONTENT_TYPE)

    return app


# --- binding and serving ------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name) means this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def check_binding(host: str, api_key: str | None) -> None:
    """Refuse to listen beyond loopback without an API key (ConfigError)."""
    if api_key is None and not is_loopback(host):
        raise ConfigError(
            f"refusing to listen on {host} without an API key: anyone who can reach it could "
            "send messages and log devices out. Set WAMGR_API_KEY (api_key in the config "
            "file), or listen on 127.0.0.1"
        )


class HttpServer:
    """uvicorn on a named thread; the socket is bound at construction (a busy port fails
    there, before anything starts) and listens at once, so requests queue until it runs."""

    def __init__(self, app: FastAPI, host: str, port: int, *, name: str = "wamgr-http"):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            self._sock = socket.create_server((host, port), family=family, backlog=1024)
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another "
                "--port (WAMGR_HTTP_PORT) or --host"
            ) from exc
        self.host, self.port = self._sock.getsockname()[:2]
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="off",
            ws="none",
            http="h11",
            loop="asyncio",
            timeout_graceful_shutdown=int(GRACEFUL_STOP_S),
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def url(self) -> str:
        """``http://host:port`` of the bound socket."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> "HttpServer":
        """Serve on the thread."""
        self._thread.start()
        return self

    def stop(self, timeout: float = GRACEFUL_STOP_S + 2.0) -> None:
        """Stop taking requests, let those under way finish, end the thread."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(1.0)
        self._sock.close()

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._sock])
        except Exception:
            logger.exception("the HTTP server failed")
