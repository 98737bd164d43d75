"""The request and response bodies of the HTTP API (pydantic models, shown at /docs)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from wamgr.config_checks import YEAR_S
from wamgr.status import (
    MAX_TEXT_CHARS,
    RECIPIENT_PATTERN,
    TEXT_PATTERN,
    TenantState,
    validate_text,
)
from wamgr.store.outbound import OutboundMessage, OutboundStatus
from wamgr.transport.outgoing import Presence


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


class WebhookIn(BaseModel):
    """One of a tenant's own webhook endpoints."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="http:// or https:// URL", max_length=2048)
    events: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="Event types it gets (session.status, message.received, message.ack, "
        "message.sent...); empty: every event",
    )
    secret: str | None = Field(
        None,
        max_length=200,
        description="Its own Standard Webhooks secret (whsec_...); none: the global one signs",
    )


class TenantSettingsIn(BaseModel):
    """Settings to change; a field left out stays as it is, a field set to null is cleared."""

    model_config = ConfigDict(extra="forbid")

    proxy: str | None = Field(
        None,
        max_length=2048,
        description="socks5://[user:password@]host:port or http(s)://...; used from the next dial",
    )
    webhooks: list[WebhookIn | str] | None = Field(
        None, max_length=10, description="The tenant's own endpoints (replaces the list)"
    )
    send_rate: float | None = Field(
        None, strict=True, description="Messages per minute (outbound pacing)"
    )
    send_burst: int | None = Field(
        None, strict=True, description="Messages sent back to back first"
    )
    metadata: dict[str, Any] | None = Field(
        None, description="Free JSON for the application (at most 16 KiB)"
    )

    def changes(self) -> dict[str, Any]:
        """The settings the body names, as ``TenantSettings.changed`` takes them."""
        return self.model_dump(include=self.model_fields_set)


class WebhookOut(BaseModel):
    """A tenant endpoint as shown: credentials in its URL and its secret masked."""

    url: str
    events: list[str]
    secret: str | None = Field(description='"***" when it has its own secret')


class TenantSettingsOut(BaseModel):
    """A tenant's settings, secrets masked."""

    proxy: str | None = Field(description="The proxy, its password masked")
    webhooks: list[WebhookOut]
    send_rate: float | None
    send_burst: int | None
    metadata: dict[str, Any] | None


class TenantDetailOut(TenantOut):
    """A tenant's status and its settings (secrets masked)."""

    settings: TenantSettingsOut


class DeliveryOut(BaseModel):
    """One webhook delivery (an event for one endpoint)."""

    id: int
    webhook_id: str = Field(description="The event's webhook-id, the same on every attempt")
    endpoint: str = Field(description="The endpoint, without credentials or query")
    event_type: str
    tenant_id: str | None
    status: str = Field(description="pending, delivered or dead (given up)")
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    gave_up_at: datetime | None
    tenant_endpoint: bool = Field(description="A tenant's own endpoint, not a global one")


class RetriedOut(BaseModel):
    """The dead deliveries made pending again (each keeps its webhook-id)."""

    retried: list[int]


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
    quoted_id: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        description="Reply to this message (its WhatsApp id); queued messages only",
    )
    queue: bool = Field(
        True,
        strict=True,
        description="true (default): store it and answer 202 at once, whatever the tenant's "
        "state; false: send it now through this instance, 409 NotConnected unless connected",
    )
    expires_in: float | None = Field(
        None,
        strict=True,
        ge=1,
        le=YEAR_S,
        description="Seconds it may wait before it expires (default: outbound_expires_in, 24 h)",
    )


_TO_DESCRIPTION = "The chat: a phone number or a WhatsApp JID (as for a text message)"
_SENDER_DESCRIPTION = (
    "In a group, who sent the message (a phone number or JID); leave out in a direct chat"
)
_EXPIRES_DESCRIPTION = "Seconds it may wait before it expires (default: outbound_expires_in)"


class ReactionIn(BaseModel):
    """A reaction to a message."""

    model_config = ConfigDict(extra="forbid")

    to: str = Field(description=_TO_DESCRIPTION)
    message_id: str = Field(
        min_length=1, max_length=128, description="The WhatsApp id of the message reacted to"
    )
    emoji: str = Field(max_length=16, description='The reaction; "" removes yours')
    sender: str | None = Field(None, description=_SENDER_DESCRIPTION)
    expires_in: float | None = Field(
        None, strict=True, ge=1, le=YEAR_S, description=_EXPIRES_DESCRIPTION
    )


class ReadIn(BaseModel):
    """Messages to mark as read (blue ticks)."""

    model_config = ConfigDict(extra="forbid")

    to: str = Field(description=_TO_DESCRIPTION)
    message_ids: list[str] = Field(
        min_length=1, max_length=100, description="The WhatsApp ids of the messages read"
    )
    sender: str | None = Field(None, description=_SENDER_DESCRIPTION)
    expires_in: float | None = Field(
        None, strict=True, ge=1, le=YEAR_S, description=_EXPIRES_DESCRIPTION
    )


class PresenceIn(BaseModel):
    """A presence to show: the account's, or in one chat."""

    model_config = ConfigDict(extra="forbid")

    presence: Presence = Field(
        description="available / unavailable (the account), typing / recording / paused "
        "(in the chat ``to``)"
    )
    to: str | None = Field(None, description="The chat, for typing, recording and paused")
    expires_in: float | None = Field(
        None, strict=True, ge=1, le=YEAR_S, description=_EXPIRES_DESCRIPTION
    )


class MessageOut(BaseModel):
    """An outbound message: queued (``message_id`` is wamgr's), or sent now with ``"queue":
    false`` (``message_id`` is then WhatsApp's, as ``wa_message_id``)."""

    message_id: str
    status: OutboundStatus = Field(
        description="queued, sending, sent, delivered, read, failed, expired, cancelled or "
        "unknown (it may or may not have been sent: its sender stopped mid-send; never resent "
        "unless asked)"
    )
    kind: str | None = Field(
        None,
        description="text, image, video, audio, document, sticker, reaction, read or presence",
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
        "kind": message.kind,
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

    # strict: a JSON number only (true or "30" is a 422, as the schema says)
    ttl: float = Field(30.0, strict=True, description="Seconds the claim lasts unless extended")


class ExtendIn(BaseModel):
    """An extension of a held claim."""

    token: int = Field(strict=True)
    ttl: float = Field(30.0, strict=True, description="Seconds from now")


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
