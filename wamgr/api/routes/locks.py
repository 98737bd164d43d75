"""Processing locks: claim a key, extend the claim, release it (see :mod:`wamgr.store.locks`).

A key may hold slashes (``shop-1/15550001111``), so ``/extend`` is routed before the claim
route, whose key would otherwise swallow it.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response

from wamgr.api.dependencies import Manager
from wamgr.api.schemas import ExtendIn, LockIn, LockOut
from wamgr.errors import LockBusy, LockNotHeld
from wamgr.store.locks import Claim, validate_lock_key, validate_seconds

router = APIRouter(prefix="/locks", tags=["locks"])

#: Seconds a claim lasts when the request has no body.
DEFAULT_TTL_S = 30.0


@router.post("/{key:path}/extend", response_model=LockOut)
def extend_lock(key: str, body: ExtendIn, mgr: Manager) -> Any:
    """Make a held claim last ``ttl`` more seconds; 409 if the token no longer holds it."""
    key = validate_lock_key(key)
    claim = Claim(mgr.locks, key, body.token, None)  # type: ignore[arg-type]
    if not claim.extend(body.ttl):
        raise LockNotHeld(key, body.token)
    return {"key": key, "token": claim.token, "expires_at": claim.expires_at}


@router.post("/{key:path}", response_model=LockOut, status_code=201)
def claim_lock(key: str, mgr: Manager, body: Annotated[LockIn | None, Body()] = None) -> Any:
    """Claim ``key`` for ``ttl`` seconds (30 without a body): 201 with the token, or 409
    with the holder's expiry."""
    locks = mgr.locks
    ttl = validate_seconds("ttl", body.ttl if body is not None else DEFAULT_TTL_S)
    claim = locks.claim(key, ttl)
    if claim is None:
        holder = locks.holder(key)
        if holder is None:
            raise LockBusy(key, 0.0, None, None)
        raise LockBusy(key, 0.0, holder.expires_at, holder.owner)
    return {"key": claim.key, "token": claim.token, "expires_at": claim.expires_at}


@router.delete("/{key:path}", status_code=204)
def release_lock(key: str, token: Annotated[int, Query()], mgr: Manager) -> Response:
    """Release the claim holding ``token``: 204, or 409 when the token is stale."""
    key = validate_lock_key(key)
    if not Claim(mgr.locks, key, token, None).release():  # type: ignore[arg-type]
        raise LockNotHeld(key, token)
    return Response(status_code=204)
