"""The media of an inbound message: ``GET /api/tenants/{id}/messages/{message_id}/media``.

The bytes come from the link that received the message (a neonize link keeps its last
inbound messages; the simulator keeps what it delivered), so the instance that holds the
tenant answers: any instance forwards the request to it (a ``download_media`` call, the
bytes in base64 in its reply) and answers with what it gave.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from wamgr.api.dependencies import KnownTenant, Manager
from wamgr.forwarding import CallKind
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
    the tenant's link has no media of that message (or no longer has the message), 409
    NotConnected unless the tenant is connected somewhere, HolderNotAnswering if its holder is
    silent."""
    message_id = validate_message_id(message_id)
    tenant_id = tenant.tenant_id
    rt = mgr.runtime
    deadline = rt.local.deadline(f"download_media({tenant_id!r})")
    media = rt.router.call(tenant_id, CallKind.DOWNLOAD_MEDIA, {"message_id": message_id}, deadline)
    return Response(content=media.data, media_type=media.mime)
