"""The media of an inbound message: ``GET /api/tenants/{id}/messages/{message_id}/media``.

The bytes come from the link that received the message (a neonize link keeps its last
inbound messages; the simulator keeps what it delivered), so the instance that holds the
tenant answers. Here that is this instance: a tenant held elsewhere is 409 HeldElsewhere
naming the holder, until forwarded calls carry the request there.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from wamgr.actors import messages as m
from wamgr.api.dependencies import KnownTenant, Manager
from wamgr.errors import HeldElsewhere, NotConnected
from wamgr.local_tenants import ask
from wamgr.store.inbound import validate_message_id

router = APIRouter(prefix="/tenants", tags=["messages"])


@router.get(
    "/{tenant_id}/messages/{message_id}/media",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The file"}},
)
def download_media(
    tenant: KnownTenant,
    message_id: Annotated[str, Path(description="The inbound message's id")],
    mgr: Manager,
) -> Any:
    """The bytes of an inbound message's media, with its mime type; 404 MediaUnavailable if
    the tenant's link has no media of that message (or no longer has the message)."""
    message_id = validate_message_id(message_id)
    tenant_id = tenant.tenant_id
    local = mgr.runtime.local
    deadline = local.deadline(f"download_media({tenant_id!r})")
    ref = local.lookup(tenant_id, deadline)
    if ref is None:
        holder = mgr.runtime.leases.live_owner(tenant_id)
        if holder is not None and holder != mgr.config.instance_id:
            raise HeldElsewhere(tenant_id, holder, "download its media")
        raise NotConnected(tenant_id, str(tenant.state))
    data, mime = ask(ref, m.DownloadMedia(message_id), deadline)
    return Response(content=data, media_type=mime)
