"""Pairing a tenant's device: the QR to scan, or a code to type on the phone instead, and
forgetting the device. Asked of any instance: the one that holds the tenant answers."""

from typing import Any, Literal

from fastapi import APIRouter, Response

from wamgr.api.dependencies import KnownTenant, Manager
from wamgr.api.schemas import PairCodeIn, PairCodeOut, TenantOut
from wamgr.errors import NotPairing
from wamgr.qr import MEDIA_TYPES, render

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
    """The pairing QR while the tenant is pairing (on whichever instance holds it); 409
    otherwise."""
    code = mgr.qr(tenant.tenant_id)
    if code is None:
        raise NotPairing(tenant.tenant_id, str(mgr.status(tenant.tenant_id).state))
    return Response(
        render(code, format),
        media_type=MEDIA_TYPES[format],
        headers={"cache-control": "no-store"},
    )


@router.post("/{tenant_id}/pair-code", response_model=PairCodeOut)
def pair_code(tenant: KnownTenant, body: PairCodeIn, mgr: Manager) -> Any:
    """A code to type on the phone instead of scanning the QR, while pairing."""
    return {"code": mgr.pair_code(tenant.tenant_id, body.phone)}


@router.post("/{tenant_id}/clear-auth", response_model=TenantOut)
def clear_auth(tenant: KnownTenant, mgr: Manager) -> Any:
    """Forget the tenant's device credentials (its link closed without logout): it waits in
    logged_out until a connect pairs it again. Only this tenant's device is touched."""
    return mgr.clear_auth(tenant.tenant_id).to_json()
