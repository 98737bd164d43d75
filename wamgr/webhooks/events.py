"""The webhook events wamgr sends, built as outbox rows ready to write (pure: no I/O).

Every event body is ``{"type": ..., "timestamp": <ISO 8601, UTC, "Z">, "data": {...}}`` and
gets a ``webhook_id`` (``msg_`` + 32 hex digits) that it keeps on every delivery attempt:

- ``session.status``: a tenant changed state (:func:`status_event`);
- ``message.received``: an inbound text message, the first time its id is seen
  (:func:`message_event`);
- ``message.sent``, ``message.failed``, ``message.expired``, ``message.unknown``: an outbound
  message reached that state (:func:`outbound_event`).

The caller writes the event with the change it reports (:mod:`wamgr.store.outbox`).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from wamgr.status import TenantStatus

STATUS_EVENT = "session.status"
MESSAGE_EVENT = "message.received"
#: Outbound states that have an event, ``message.<state>``.
OUTBOUND_EVENT_STATES = frozenset({"sent", "failed", "expired", "unknown"})


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One event as the outbox stores it: its id, type, tenant and the JSON body sent."""

    webhook_id: str
    event_type: str
    tenant_id: str
    body: str


def _event(
    event_type: str, tenant_id: str, at: datetime | None, data: dict[str, Any]
) -> WebhookEvent:
    """An event of ``event_type`` that happened ``at`` (now if None), with a new id."""
    at = at or datetime.now(UTC)
    body = {
        "type": event_type,
        "timestamp": at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "data": data,
    }
    return WebhookEvent(f"msg_{uuid.uuid4().hex}", event_type, tenant_id, json.dumps(body))


def status_event(status: TenantStatus, old_state: str | None) -> WebhookEvent:
    """The ``session.status`` event of a change from ``old_state`` to ``status``, stamped
    with the status's ``updated_at``."""
    retry = status.next_retry_at
    return _event(
        STATUS_EVENT,
        status.tenant_id,
        status.updated_at,
        {
            "tenant_id": status.tenant_id,
            "old_state": old_state,
            "new_state": str(status.state),
            "reason": status.last_error,
            "attempt": status.attempt,
            "next_retry_at": retry.isoformat() if retry else None,
            "owner": status.owner,
            "jid": status.jid,
        },
    )


def message_event(tenant_id: str, message_id: str, sender: str, text: str) -> WebhookEvent:
    """The ``message.received`` event of an inbound text message, stamped now."""
    return _event(
        MESSAGE_EVENT,
        tenant_id,
        None,
        {"tenant_id": tenant_id, "message_id": message_id, "sender": sender, "text": text},
    )


def outbound_event(
    tenant_id: str,
    message_id: str,
    status: str,
    at: datetime | None,
    *,
    to: str | None,
    wa_message_id: str | None,
    error: str | None,
    idempotency_key: str | None,
) -> WebhookEvent:
    """The ``message.<status>`` event of an outbound message that reached ``status`` (one of
    :data:`OUTBOUND_EVENT_STATES`) ``at`` that time."""
    if status not in OUTBOUND_EVENT_STATES:
        raise ValueError(f"no event for outbound status {status!r}")
    return _event(
        f"message.{status}",
        tenant_id,
        at,
        {
            "tenant_id": tenant_id,
            "message_id": message_id,
            "status": status,
            "to": to,
            "wa_message_id": wa_message_id,
            "error": error,
            "idempotency_key": idempotency_key,
        },
    )
