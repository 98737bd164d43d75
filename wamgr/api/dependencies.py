"""What a route is given instead of reaching for it: the manager, a tenant resolved from the
path, and the API-key check every ``/api`` route runs first.

A route that acts on an existing tenant takes :data:`KnownTenant`: the id in the path is
validated (422 ``InvalidTenantId``) and looked up once (404 ``UnknownTenant``) before the route
runs, so the route body only does its job. The app that uses these keeps the manager in
``app.state.manager`` and the key in ``app.state.api_key`` (see :func:`wamgr.api.app.create_app`).
"""

import hmac
from typing import Annotated

from fastapi import Depends, Path, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from wamgr.errors import ApiKeyRequired
from wamgr.manager import ConnectionManager
from wamgr.status import TENANT_ID_PATTERN, TenantStatus, validate_tenant_id

_key_header = APIKeyHeader(name="X-Api-Key", auto_error=False)
_bearer = HTTPBearer(auto_error=False)


def get_manager(request: Request) -> ConnectionManager:
    """The manager the app serves."""
    return request.app.state.manager


Manager = Annotated[ConnectionManager, Depends(get_manager)]


def valid_tenant_id(
    tenant_id: Annotated[
        str,
        Path(
            description="1 to 64 characters, each a letter, a digit, '_', '.' or '-'; not "
            "starting with '-', and not '.' or '..'",
            json_schema_extra={"pattern": TENANT_ID_PATTERN},
        ),
    ],
) -> str:
    """The tenant id in the path; InvalidTenantId (422) if wamgr does not accept it."""
    return validate_tenant_id(tenant_id)


TenantId = Annotated[str, Depends(valid_tenant_id)]


def known_tenant(tenant_id: TenantId, mgr: Manager) -> TenantStatus:
    """The status of the tenant in the path (live if this instance runs it, else as stored);
    UnknownTenant (404) if it was never added."""
    return mgr.status(tenant_id)


KnownTenant = Annotated[TenantStatus, Depends(known_tenant)]


def require_api_key(
    request: Request,
    given: Annotated[str | None, Security(_key_header)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> None:
    """Let the request through if it carries the app's key (``X-Api-Key`` or ``Authorization:
    Bearer``) or the app has none; else ApiKeyRequired (401). Compared in constant time.

    The app's :class:`~wamgr.api.guard.RequestGuard` checks the same before the body is
    read; this declares the key in the OpenAPI document and guards a router mounted alone."""
    expected: bytes | None = request.app.state.api_key
    if expected is None:
        return
    key = given if given is not None else (credentials.credentials if credentials else None)
    if key is None:
        raise ApiKeyRequired(given=False)
    if not hmac.compare_digest(key.encode(), expected):
        raise ApiKeyRequired(given=True)
