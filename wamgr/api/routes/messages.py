"""Messages a tenant sends."""

from typing import Any

from fastapi import APIRouter

from wamgr.api.dependencies import KnownTenant, Manager
from wamgr.api.schemas import MessageIn, MessageOut

router = APIRouter(prefix="/tenants", tags=["messages"])


@router.post("/{tenant_id}/messages", response_model=MessageOut, status_code=202)
def send_message(tenant: KnownTenant, body: MessageIn, mgr: Manager) -> Any:
    """Send a text message now, through whichever instance holds the tenant; 409 (naming
    that instance) unless the tenant is connected there."""
    return {"message_id": mgr.send_text(tenant.tenant_id, body.to, body.text)}
