"""Pairing a tenant's device: the QR to scan, or a code to type on the phone instead."""

from typing import Any, Literal

from fastapi import APIRouter, Response

from wamgr.api.dependencies import KnownTenant, Manager
from wamgr.api.schemas import PairCodeIn, PairCodeOut
from wamgr.errors import HeldElsewhere, NotPairing
from wamgr.qr import MEDIA_TYPES, render
from wamgr.status import TenantState

router = APIRouter(prefix="/tenants", tags=["pairing"])


@router.get(
    "/{tenant_id}/qr",
    response_class=Response,
    responses={
        200: {
            "content": {media: {} for media in MEDIA_TYPES.values()},
            "description": "The QR to scan with the phone (Linked devices)",
        }
    },
)
def qr(
    tenant: KnownTenant, mgr: Manager, format: Literal["png", "svg", "text"] = "png"
) -> Response:
    """The pairing QR while the tenant is pairing on this instance; 409 otherwise."""
    code = mgr.qr(tenant.tenant_id)
    if code is None:
        elsewhere = tenant.owner not in (None, mgr.config.instance_id)
        if elsewhere and tenant.state is TenantState.PAIRING:
            raise HeldElsewhere(tenant.tenant_id, tenant.owner, "get its QR")
        raise NotPairing(tenant.tenant_id, str(tenant.state))
    return Response(
        render(code, format),
        media_type=MEDIA_TYPES[format],
        headers={"cache-control": "no-store"},
    )


@router.post("/{tenant_id}/pair-code", response_model=PairCodeOut)
def pair_code(tenant: KnownTenant, body: PairCodeIn, mgr: Manager) -> Any:
    """A code to type on the phone instead of scanning the QR, while pairing."""
    return {"code": mgr.pair_code(tenant.tenant_id, body.phone)}
