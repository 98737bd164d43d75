"""The request and response bodies of the HTTP API (pydantic models, shown at /docs)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field

from wamgr.config_checks import YEAR_S
from wamgr.status import (
    MAX_TEXT_CHARS,
    RECIPIENT_PATTERN,
    TEXT_PATTERN,
    TenantState,
    validate_text,
)
from wamgr.store.outbound import OutboundMessage, OutboundStatus


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
    """The health of one instance (``GET /api/status``)."""

    instance_id: str
    database: str = Field(description='"ok", or what is wrong with it')
    tenants: dict[str, int] = Field(description="Tenants this instance runs, by state")
    leases_held: int | None = Field(description="Unexpired leases of this instance")


class ActiveOut(BaseModel):
    """Whether this instance has a connected link for the tenant."""

    active: bool


class PairCodeIn(BaseModel):
    """The phone to link by code instead of by QR."""

    phone: str = Field(description="International number, country code first", min_length=1)


class PairCodeOut(BaseModel):
    """The code to type on the phone."""

    code: str


class MessageIn(BaseModel):
    """A text message to send."""

    to: str = Field(
        description="A phone number (7 to 15 digits, country code first, an optional '+') or "
        "a WhatsApp JID (user@s.whatsapp.net, @g.us, @lid, @newsletter, @broadcast); "
        "anything else is 422 InvalidRecipient",
        json_schema_extra={"pattern": RECIPIENT_PATTERN},
    )
    text: Annotated[str, AfterValidator(validate_text)] = Field(
        min_length=1,
        max_length=MAX_TEXT_CHARS,
        description=f"At most {MAX_TEXT_CHARS} characters (WhatsApp's limit); no control "
        "character but tab and line breaks",
        json_schema_extra={"pattern": TEXT_PATTERN},
    )
    queue: bool = Field(
        True,
        description="true (default): store it and answer 202 at once, whatever the tenant's "
        "state; false: send it now through this instance, 409 NotConnected unless connected",
    )
    expires_in: float | None = Field(
        None,
        ge=1,
        le=YEAR_S,
        description="Seconds it may wait before it expires (default: outbound_expires_in, 24 h)",
    )


class MessageOut(BaseModel):
    """An outbound message: queued (``message_id`` is wamgr's), or sent now with ``"queue":
    false`` (``message_id`` is then WhatsApp's, as ``wa_message_id``)."""

    message_id: str
    status: OutboundStatus = Field(
        description="queued, sending, sent, failed, expired, cancelled or unknown (it may or "
        "may not have been sent: its sender stopped mid-send; never resent unless asked)"
    )
    tenant_id: str | None = None
    to: str | None = None
    idempotency_key: str | None = None
    wa_message_id: str | None = Field(None, description="WhatsApp's id, once sent")
    error: str | None = Field(None, description="Why it failed, expired or is unknown")
    attempts: int = 0
    created_at: datetime | None = None
    expires_at: datetime | None = None
    sent_at: datetime | None = None
    finished_at: datetime | None = Field(None, description="When it reached its state")


def message_out(message: OutboundMessage) -> dict[str, Any]:
    """The body of an outbound message (no text: the caller has it, logs must not)."""
    return {
        "message_id": message.message_id,
        "status": message.status,
        "tenant_id": message.tenant_id,
        "to": message.to,
        "idempotency_key": message.idempotency_key,
        "wa_message_id": message.wa_message_id,
        "error": message.error,
        "attempts": message.attempts,
        "created_at": message.created_at,
        "expires_at": message.expires_at,
        "sent_at": message.sent_at,
        "finished_at": message.finished_at,
    }


class LockIn(BaseModel):
    """A claim of a processing lock."""

    ttl: float = Field(30.0, description="Seconds the claim lasts unless extended")


class ExtendIn(BaseModel):
    """An extension of a held claim."""

    token: int
    ttl: float = Field(30.0, description="Seconds from now")


class LockOut(BaseModel):
    """A held claim of a processing lock."""

    key: str
    token: int = Field(description="Fencing token: grows with every claim")
    expires_at: datetime


class ErrorOut(BaseModel):
    """Every error's body (some add fields that help a program, e.g. a tenant's state)."""

    error: str = Field(description="The error's class, e.g. UnknownTenant")
    message: str = Field(description="What went wrong and what to do")


#: The error statuses any ``/api`` route may answer, for the OpenAPI document.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (401, 404, 409, 413, 422, 503, 504)
}
