"""The webhook events wamgr sends: outbox rows ready to write, or the SQL that builds them
(pure: no I/O).

Every event body is ``{"type": ..., "timestamp": <ISO 8601, UTC, "Z">, "data": {...}}`` and
gets a ``webhook_id`` (``msg_`` + 32 hex digits) that it keeps on every delivery attempt:

- ``session.status``: a tenant changed state. PostgreSQL builds these in the statement that
  writes the status (:data:`STATUS_EVENTS_SQL`): a stop or a restore makes thousands at once,
  and building each in Python cost ~13 µs of the interpreter's time;
- ``message.received``: an inbound message of any kind, the first time its id is seen
  (:func:`message_event`), with its kind, text or caption, sender, chat, quoted id and
  media metadata (:func:`message_data`);
- ``message.ack``: WhatsApp reports messages the tenant sent as delivered, read or played
  (:func:`ack_event`);
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

from wamgr.transport.base import MessageReceived, Receipt

STATUS_EVENT = "session.status"
MESSAGE_EVENT = "message.received"
ACK_EVENT = "message.ack"
#: Outbound states that have an event, ``message.<state>``.
OUTBOUND_EVENT_STATES = frozenset({"sent", "failed", "expired", "unknown"})
#: Every event type a webhook may filter on (the outbound queue's events included).
EVENT_TYPES = (
    STATUS_EVENT,
    MESSAGE_EVENT,
    ACK_EVENT,
    *(f"message.{state}" for state in sorted(OUTBOUND_EVENT_STATES)),
)


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


#: A CTE ``events(webhook_id, event_type, tenant_id, body, n)`` of ``session.status``
#: events, one per change, built by PostgreSQL from the arrays of
#: :func:`~wamgr.status.status_columns` with the prefix ``se_``, for
#: :data:`~wamgr.store.outbox.OUTBOX_INSERT`. The body is the same as every event's:
#: ``timestamp`` is the status's ``updated_at`` (UTC, milliseconds, "Z"), ``data`` holds
#: ``tenant_id``, ``old_state``, ``new_state``, ``reason`` (the status's ``last_error``),
#: ``attempt``, ``next_retry_at`` (ISO 8601, UTC), ``owner`` and ``jid``. The id is
#: ``msg_`` + 32 hex digits of a random UUID (``gen_random_uuid``: PostgreSQL 13 or later).
STATUS_EVENTS_SQL = f"""
events AS (
  SELECT 'msg_' || replace(gen_random_uuid()::text, '-', '') AS webhook_id,
         '{STATUS_EVENT}'::text AS event_type, e.tenant_id,
         json_build_object(
           'type', '{STATUS_EVENT}',
           'timestamp', to_char(coalesce(e.stamp, now()) AT TIME ZONE 'UTC',
                                'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
           'data', json_build_object(
             'tenant_id', e.tenant_id, 'old_state', e.old_state, 'new_state', e.new_state,
             'reason', e.reason, 'attempt', e.attempt,
             'next_retry_at', to_char(e.retry AT TIME ZONE 'UTC',
                                      'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
             'owner', e.owner, 'jid', e.jid))::text AS body,
         e.n
    FROM unnest(%(se_tenants)b::text[], %(se_olds)b::text[], %(se_states)b::text[],
                %(se_errors)b::text[], %(se_attempts)b::int[], %(se_retries)b::timestamptz[],
                %(se_owners)b::text[], %(se_jids)b::text[], %(se_stamps)b::timestamptz[])
         WITH ORDINALITY AS e(tenant_id, old_state, new_state, reason, attempt, retry, owner,
                              jid, stamp, n))
"""


def message_data(tenant_id: str, message: MessageReceived) -> dict[str, Any]:
    """The ``data`` of an inbound message, as webhooks and subscribers get it."""
    media = message.media
    return {
        "tenant_id": tenant_id,
        "message_id": message.message_id,
        "type": str(message.kind),
        "sender": message.sender,
        "chat": message.chat or message.sender,
        "is_group": message.is_group,
        "text": message.text,
        "quoted_id": message.quoted_id,
        "media": None
        if media is None
        else {
            "mime": media.mime,
            "size": media.size,
            "sha256": media.sha256,
            "filename": media.filename,
            "voice": media.voice,
        },
    }


def message_event(tenant_id: str, message: MessageReceived) -> WebhookEvent:
    """The ``message.received`` event of an inbound message, stamped now."""
    return _event(MESSAGE_EVENT, tenant_id, None, message_data(tenant_id, message))


def ack_event(tenant_id: str, receipt: Receipt) -> WebhookEvent:
    """The ``message.ack`` event of a receipt, stamped now."""
    return _event(
        ACK_EVENT,
        tenant_id,
        None,
        {
            "tenant_id": tenant_id,
            "message_ids": list(receipt.message_ids),
            "status": str(receipt.status),
            "chat": receipt.chat,
            "sender": receipt.sender,
        },
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
