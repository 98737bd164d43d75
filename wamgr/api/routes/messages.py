"""Messages a tenant sends: the durable outbound queue (:mod:`wamgr.outbound`).

``POST`` stores the message and answers 202 whatever the tenant's state (``"queue": false``
sends it now instead, or 409); the instance holding the tenant sends it. An
``Idempotency-Key`` header makes a retried POST return the first message, never a second.
Media, reactions, read receipts and presence: :mod:`wamgr.api.routes.message_kinds`.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query

from wamgr.api.dependencies import KnownTenant, Manager
from wamgr.api.schemas import MessageIn, MessageOut, message_out
from wamgr.message_errors import InvalidMessage
from wamgr.outbound import MAX_LISTED
from wamgr.store.outbound import OutboundStatus
from wamgr.transport.outgoing import TextOut

router = APIRouter(prefix="/tenants", tags=["messages"])


@router.post("/{tenant_id}/messages", response_model=MessageOut, status_code=202)
def send_message(
    tenant: KnownTenant,
    body: MessageIn,
    mgr: Manager,
    idempotency_key: Annotated[
        str | None,
        Header(
            description="The same key for the same tenant returns the first message instead "
            "of queueing another (1 to 255 characters)",
        ),
    ] = None,
) -> Any:
    """Queue a text message (202, ``status: queued``), a reply with ``quoted_id``; with
    ``"queue": false``, send it now
    (through whichever instance holds the tenant; 409, naming that instance,
    unless the tenant is connected there)."""
    if not body.queue:
        if body.quoted_id is not None:
            raise InvalidMessage("quoted_id", 'a reply is queued: leave out "queue": false')
        wa_id = mgr.send_text(tenant.tenant_id, body.to, body.text)
        return {"message_id": wa_id, "status": "sent", "wa_message_id": wa_id}
    if body.quoted_id is not None:
        reply = TextOut(body.to, body.text, body.quoted_id)
        return message_out(
            mgr.send_message(
                tenant.tenant_id,
                reply,
                idempotency_key=idempotency_key,
                expires_in=body.expires_in,
            )
        )
    message = mgr.send(
        tenant.tenant_id,
        body.to,
        body.text,
        idempotency_key=idempotency_key,
        expires_in=body.expires_in,
    )
    return message_out(message)


@router.get("/{tenant_id}/messages", response_model=list[MessageOut])
def list_messages(
    tenant: KnownTenant,
    mgr: Manager,
    status: OutboundStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LISTED)] = 100,
) -> Any:
    """The tenant's outbound messages, oldest first (``?status=queued`` for those waiting)."""
    messages = mgr.outbound_messages(tenant.tenant_id, status, limit)
    return [message_out(m) for m in messages]


@router.get("/{tenant_id}/messages/{message_id}", response_model=MessageOut)
def get_message(tenant: KnownTenant, message_id: str, mgr: Manager) -> Any:
    """One outbound message and its state; 404 UnknownMessage."""
    return message_out(mgr.outbound(tenant.tenant_id, message_id))


@router.delete("/{tenant_id}/messages/{message_id}", response_model=MessageOut)
def cancel_message(tenant: KnownTenant, message_id: str, mgr: Manager) -> Any:
    """Cancel a queued message; 409 MessageStateConflict once it is sending or done."""
    return message_out(mgr.cancel_outbound(tenant.tenant_id, message_id))


@router.post(
    "/{tenant_id}/messages/{message_id}/resend", response_model=MessageOut, status_code=202
)
def resend_message(tenant: KnownTenant, message_id: str, mgr: Manager) -> Any:
    """Queue again an unknown, failed, expired or cancelled message (an unknown one may then
    reach the recipient twice); 409 in any other state."""
    return message_out(mgr.resend(tenant.tenant_id, message_id))
