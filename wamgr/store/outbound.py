"""The durable outbound queue's table, ``wamgr_outbound``, and its wake-up channel (SQL only).

Any instance adds a message (:meth:`OutboundStore.add`) and, in the same statement, sends
``NOTIFY wamgr_outbound, '<holder>'`` to the instance holding the tenant's lease (unless that
is itself), which listens (:mod:`wamgr.store.outbound_channel`) and sends it. A message moves
``queued -> sending -> sent``; the move to ``sending`` is committed before the send, so a
row found ``sending`` by an instance that did not put it there is one whose sender died
mid-send: it becomes ``unknown`` (:meth:`OutboundStore.mark_unknown`), never sent again
unless resent.

Every change of state that has a webhook event (``message.sent`` / ``failed`` / ``expired``
/ ``unknown``) writes the event's outbox rows in the same transaction
(:mod:`wamgr.webhooks.events`, :mod:`wamgr.store.outbox`). Times are the caller's clock
(epoch seconds), so expiry runs on the injectable clock like everything else.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from wamgr.store.db import Database
from wamgr.store.outbox import EVENTS_FROM_PARAMS, OUTBOX_INSERT, outbox_params
from wamgr.webhooks.events import OUTBOUND_EVENT_STATES, WebhookEvent, outbound_event

#: The NOTIFY channel; the payload is the instance that holds the tenant of the message added
#: or resent (no notification when none holds it, or when it is the instance adding it).
CHANNEL = "wamgr_outbound"
#: Notify the live holder of the tenant of ``o`` unless it is ``%(me)s``.
_NOTIFY_HOLDER = f"""(SELECT pg_notify('{CHANNEL}', l.owner) FROM wamgr_leases l
                      WHERE l.tenant_id = o.tenant_id AND l.expires_at > now()
                        AND l.owner IS DISTINCT FROM %(me)s)"""


class OutboundStatus(enum.StrEnum):
    """Where an outbound message is."""

    QUEUED = "queued"  # waiting for its tenant (connected, paced) to send it
    SENDING = "sending"  # handed to WhatsApp right now
    SENT = "sent"  # WhatsApp took it: ``wa_message_id`` and ``sent_at`` are set
    DELIVERED = "delivered"  # the recipient's phone has it (a receipt said so)
    READ = "read"  # the recipient read it (or played a voice note or video)
    FAILED = "failed"  # not sent, for ``error`` (the tenant logged out, was removed…)
    EXPIRED = "expired"  # not sent before ``expires_at``
    CANCELLED = "cancelled"  # cancelled while queued
    UNKNOWN = "unknown"  # its sender died while sending: it may or may not have gone out


#: States a message can be resent from (``resend``): it is certainly not on its way.
RESENDABLE = frozenset(OutboundStatus) - {
    OutboundStatus.QUEUED, OutboundStatus.SENDING, OutboundStatus.SENT,
    OutboundStatus.DELIVERED, OutboundStatus.READ,
}  # fmt: skip
#: The states a receipt moves a message from, by the state it moves it to.
_RECEIPT_FROM = {
    OutboundStatus.DELIVERED: [OutboundStatus.SENT],
    OutboundStatus.READ: [OutboundStatus.SENT, OutboundStatus.DELIVERED],
}


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One message of the outbound queue, as stored."""

    message_id: str
    tenant_id: str
    kind: str  # 'text', a media kind, 'reaction', 'read' or 'presence' (transport.outgoing)
    status: OutboundStatus
    seq: int  # orders one tenant's messages
    to: str
    payload: dict[str, Any] = field(repr=False)  # the text is never logged
    idempotency_key: str | None
    wa_message_id: str | None  # WhatsApp's id, once sent
    error: str | None
    attempts: int  # sends tried (a tenant that refused it, not connected, does not count)
    created_at: datetime
    expires_at: datetime
    sent_at: datetime | None
    finished_at: datetime | None  # when it reached its present state, unless queued
    #: A media message's file, read only by :meth:`OutboundStore.claim` (None elsewhere):
    #: kept in its own column, so reading a row never reads (nor detoasts) the file.
    media: bytes | None = field(default=None, repr=False)

    @property
    def text(self) -> str:
        """The text of a 'text' message."""
        return str(self.payload.get("text", ""))


_COLUMNS = (
    "o.message_id, o.tenant_id, o.kind, o.status, o.seq, o.payload, o.idempotency_key,"
    " o.wa_message_id, o.error, o.attempts, o.created_at, o.expires_at, o.sent_at,"
    " o.finished_at"
)


def _message(row: Sequence[Any], media: bytes | None = None) -> OutboundMessage:
    (mid, tenant, kind, status, seq, payload, key, wa_id, error, attempts) = row[:10]
    created, expires, sent, finished = row[10:14]
    return OutboundMessage(
        mid, tenant, kind, OutboundStatus(status), seq, str(payload.get("to") or ""), payload,
        key, wa_id, error, attempts, created, expires, sent, finished, media,
    )  # fmt: skip


_ADD = f"""
WITH ins AS (
    INSERT INTO wamgr_outbound AS o (message_id, tenant_id, kind, payload, media,
                                     idempotency_key, created_at, expires_at)
    SELECT %(id)s, t.tenant_id, %(kind)s, %(payload)s, %(media)s, %(key)s, to_timestamp(%(now)s),
           to_timestamp(%(now)s) + %(expires_in)s * interval '1 second'
      FROM wamgr_tenants t WHERE t.tenant_id = %(tenant)s
    ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
    RETURNING {_COLUMNS}
)
SELECT o.*, {_NOTIFY_HOLDER} FROM ins AS o
"""

# The heads of the tenants whose lease ``owner`` holds: the read walks the queued messages
# (the partial index), not the tenants, so its cost does not grow with the tenants held.
_HEADS = f"""
SELECT DISTINCT ON (o.tenant_id) {_COLUMNS} FROM wamgr_outbound o
  JOIN wamgr_leases l ON l.tenant_id = o.tenant_id AND l.owner = %(owner)s
 WHERE o.status = 'queued'
 ORDER BY o.tenant_id, o.seq
"""

_SETTLE = f"""
UPDATE wamgr_outbound o
   SET status = u.status, wa_message_id = coalesce(u.wa_id, o.wa_message_id), error = u.error,
       attempts = o.attempts - CASE WHEN u.status = 'queued' THEN 1 ELSE 0 END,
       sent_at = CASE WHEN u.status = 'sent' THEN to_timestamp(%(now)s) ELSE o.sent_at END,
       finished_at = CASE WHEN u.status = 'queued' THEN NULL ELSE to_timestamp(%(now)s) END
  FROM unnest(%(ids)s::text[], %(statuses)s::text[], %(wa_ids)s::text[], %(errors)s::text[])
       AS u(id, status, wa_id, error)
 WHERE o.message_id = u.id AND o.status = ANY(%(from)s) AND o.sender = %(sender)s
RETURNING {_COLUMNS}
"""

_FAIL_PARKED = f"""
UPDATE wamgr_outbound o
   SET status = 'failed', finished_at = to_timestamp(%(now)s),
       error = 'tenant ' || t.tenant_id || CASE WHEN t.desired = 'stopped' THEN ' was removed'
               ELSE ' is ' || t.state || coalesce(' (' || t.last_error || ')', '') END
  FROM wamgr_tenants t
 WHERE o.tenant_id = t.tenant_id AND o.status = 'queued'
   AND (t.desired = 'stopped' OR t.state IN ('logged_out', 'conflict', 'failed'))
   AND NOT (t.tenant_id = ANY(%(waiting)b::text[]))
RETURNING {_COLUMNS}
"""


class OutboundStore:
    """Adds, reads and moves the messages of the outbound queue.

    ``endpoints`` are the webhook URLs each state change writes its event for.
    """

    def __init__(self, db: Database, endpoints: Sequence[str] = (), me: str | None = None):
        self._db = db
        self._endpoints = list(endpoints)
        self._me = me  # this instance: it needs no notification for its own tenants

    # --- the application's side ---------------------------------------------------------

    def add(
        self,
        message_id: str,
        tenant_id: str,
        payload: dict[str, Any],
        *,
        now: float,
        expires_in_s: float,
        idempotency_key: str | None = None,
        kind: str = "text",
        media: bytes | None = None,
    ) -> tuple[OutboundMessage, bool] | None:
        """Queue a message and wake the tenant's holder; returns it and whether it is new,
        or None if the tenant does not exist.

        With an ``idempotency_key`` the tenant already used, nothing is added and the first
        message with that key is returned (False), whatever its state. ``media`` is a media
        message's file (its ``payload`` then holds the rest).
        """
        params = {
            "id": message_id, "tenant": tenant_id, "kind": kind, "payload": Jsonb(payload),
            "media": media,
            "key": idempotency_key, "now": now, "expires_in": expires_in_s, "me": self._me,
        }  # fmt: skip
        with self._db.connection() as conn:
            row = conn.execute(_ADD, params).fetchone()
            if row is not None:
                return _message(row), True
            if idempotency_key is None:
                return None  # no such tenant
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM wamgr_outbound o"
                " WHERE o.tenant_id = %s AND o.idempotency_key = %s",
                (tenant_id, idempotency_key),
            ).fetchone()
        return (_message(row), False) if row is not None else None

    def get(self, tenant_id: str, message_id: str) -> OutboundMessage | None:
        """The message, or None if the tenant has none with that id."""
        with self._db.connection() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM wamgr_outbound o"
                " WHERE o.tenant_id = %s AND o.message_id = %s",
                (tenant_id, message_id),
            ).fetchone()
        return _message(row) if row is not None else None

    def list(
        self, tenant_id: str, status: OutboundStatus | None = None, limit: int = 100
    ) -> list[OutboundMessage]:
        """The tenant's messages (in ``status``), oldest first, at most ``limit``."""
        with self._db.connection() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM wamgr_outbound o WHERE o.tenant_id = %(tenant)s"
                " AND (%(status)s::text IS NULL OR o.status = %(status)s)"
                " ORDER BY o.seq LIMIT %(limit)s",
                {"tenant": tenant_id, "status": status, "limit": limit},
            ).fetchall()
        return [_message(row) for row in rows]

    def cancel(self, tenant_id: str, message_id: str, now: float) -> OutboundMessage | None:
        """Cancel the message if it is queued; returns it cancelled, or None if it was not
        queued (or does not exist)."""
        with self._db.connection() as conn:
            row = conn.execute(
                "UPDATE wamgr_outbound o SET status = 'cancelled',"
                " finished_at = to_timestamp(%s) WHERE o.tenant_id = %s AND o.message_id = %s"
                f" AND o.status = 'queued' RETURNING {_COLUMNS}",
                (now, tenant_id, message_id),
            ).fetchone()
        return _message(row) if row is not None else None

    def resend(self, tenant_id: str, message_id: str, now: float) -> OutboundMessage | None:
        """Queue again a message that is failed, expired, cancelled or unknown, in its old
        place in the tenant's order, with as long to live as it first had; returns it, or
        None if it is in none of those states (or does not exist)."""
        params = {"now": now, "tenant": tenant_id, "id": message_id, "me": self._me,
                  "from": list(RESENDABLE)}  # fmt: skip
        with self._db.connection() as conn:
            row = conn.execute(
                "UPDATE wamgr_outbound o SET status = 'queued', error = NULL, finished_at = NULL,"
                " expires_at = to_timestamp(%(now)s) + (o.expires_at - o.created_at)"
                " WHERE o.tenant_id = %(tenant)s AND o.message_id = %(id)s"
                f" AND o.status = ANY(%(from)s) RETURNING {_COLUMNS}, {_NOTIFY_HOLDER}",
                params,
            ).fetchone()
        return _message(row) if row is not None else None

    # --- the sender's side --------------------------------------------------------------

    def heads(self, owner: str) -> list[OutboundMessage]:
        """The first queued message of each tenant whose lease ``owner`` holds (by the
        leases table) that has one. The read walks the queued messages, so it costs the
        same with ten tenants held or ten thousand."""
        with self._db.connection() as conn:
            rows = conn.execute(_HEADS, {"owner": owner}).fetchall()
        return [_message(row) for row in rows]

    def claim(self, message_ids: Sequence[str], sender: str, now: float) -> list[OutboundMessage]:
        """Mark those of the messages that are still queued ``sending`` by ``sender`` and
        return them, each with its ``media`` (committed before this returns: the send may
        follow)."""
        if not message_ids:
            return []
        with self._db.connection() as conn:
            rows = conn.execute(
                "UPDATE wamgr_outbound o SET status = 'sending', attempts = o.attempts + 1,"
                " sender = %(sender)s, sending_at = to_timestamp(%(now)s)"
                " WHERE o.message_id = ANY(%(ids)s) AND o.status = 'queued'"
                f" RETURNING {_COLUMNS}, o.media",
                {"sender": sender, "now": now, "ids": list(message_ids)},
            ).fetchall()
        return [_message(row[:14], media=row[14]) for row in rows]

    def settle(
        self,
        outcomes: Sequence[tuple[str, OutboundStatus, str | None, str | None]],
        sender: str,
        now: float,
    ) -> list[OutboundMessage]:
        """Record what became of messages ``sender`` claimed: ``(message_id, status,
        wa_message_id, error)`` each, ``sent`` / ``queued`` (not sent: try again) / ``failed``
        / ``unknown``. A message another instance marked ``unknown`` meanwhile (it took the
        tenant over) still becomes ``sent`` when it was. Returns the messages changed."""
        if not outcomes:
            return []
        params = {
            "ids": [o[0] for o in outcomes],
            "statuses": [str(o[1]) for o in outcomes],
            "wa_ids": [o[2] for o in outcomes],
            "errors": [o[3] for o in outcomes],
            "from": [OutboundStatus.SENDING, OutboundStatus.UNKNOWN],
            "sender": sender,
            "now": now,
        }
        return self._transition(_SETTLE, params)

    def acknowledge(
        self, tenant_id: str, wa_message_ids: Sequence[str], status: OutboundStatus
    ) -> list[OutboundMessage]:
        """Move the tenant's messages sent as ``wa_message_ids`` to ``status`` (``delivered``
        from ``sent``; ``read`` from ``sent`` or ``delivered``): what a receipt says. Never
        moves one back. Times are the database's (a receipt has no clock of the caller).
        Returns the messages moved."""
        if not wa_message_ids:
            return []
        return self._transition(
            "UPDATE wamgr_outbound o SET status = %(status)s, finished_at = now()"
            " WHERE o.tenant_id = %(tenant)s AND o.wa_message_id = ANY(%(ids)s)"
            f" AND o.status = ANY(%(from)s) RETURNING {_COLUMNS}",
            {"status": str(status), "tenant": tenant_id, "ids": list(wa_message_ids),
             "from": [str(s) for s in _RECEIPT_FROM[status]]},
        )  # fmt: skip

    def sending_tenants(self) -> set[str]:
        """The tenants with a message caught ``sending`` (few, or none: a sender marks each
        message sent or failed as soon as it knows)."""
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT DISTINCT tenant_id FROM wamgr_outbound WHERE status = 'sending'"
            ).fetchall()
        return {row[0] for row in rows}

    def mark_unknown(
        self, tenant_ids: Sequence[str], now: float, error: str, keep: Sequence[str] = ()
    ) -> list[OutboundMessage]:
        """Make ``unknown`` every message of ``tenant_ids`` caught ``sending`` (its sender
        died, or lost the tenant, mid-send), except the messages ``keep``."""
        if not tenant_ids:
            return []
        return self._transition(
            "UPDATE wamgr_outbound o SET status = 'unknown', error = %(error)s,"
            " finished_at = to_timestamp(%(now)s)"
            " WHERE o.tenant_id = ANY(%(tenants)b::text[]) AND o.status = 'sending'"
            f" AND NOT (o.message_id = ANY(%(keep)s)) RETURNING {_COLUMNS}",
            {"tenants": list(tenant_ids), "now": now, "error": error, "keep": list(keep)},
        )

    def expire(self, now: float) -> list[OutboundMessage]:
        """Make ``expired`` every queued message past its ``expires_at``."""
        return self._transition(
            "UPDATE wamgr_outbound o SET status = 'expired', finished_at = to_timestamp(%(now)s),"
            " error = 'not sent before it expired'"
            " WHERE o.status = 'queued' AND o.expires_at <= to_timestamp(%(now)s)"
            f" RETURNING {_COLUMNS}",
            {"now": now},
        )

    def fail_parked(self, now: float, waiting: Sequence[str] = ()) -> list[OutboundMessage]:
        """Make ``failed`` the queued messages of tenants that will not send: removed
        (desired stopped), logged out, in conflict or failed, as stored; except ``waiting``
        (tenants this instance runs in a state that waits)."""
        return self._transition(_FAIL_PARKED, {"now": now, "waiting": list(waiting)})

    def prune(self, before: float) -> int:
        """Delete the messages that reached a final state (all but queued and sending) before
        ``before`` (epoch seconds); returns how many."""
        with self._db.connection() as conn:
            cur = conn.execute(
                "DELETE FROM wamgr_outbound WHERE status NOT IN ('queued', 'sending')"
                " AND finished_at < to_timestamp(%s)",
                (before,),
            )
            return cur.rowcount

    def depth(self) -> tuple[int, datetime | None]:
        """How many messages are queued (all tenants), and when the oldest was added."""
        with self._db.connection() as conn:
            row = conn.execute(
                "SELECT count(*), min(created_at) FROM wamgr_outbound WHERE status = 'queued'"
            ).fetchone()
        assert row is not None
        return int(row[0]), row[1]

    def _transition(self, sql: str, params: dict[str, Any]) -> list[OutboundMessage]:
        """Run an UPDATE that returns the messages it moved and, in the same transaction,
        write the webhook events of those that reached a state that has one."""
        with self._db.connection() as conn, conn.transaction():
            moved = [_message(row) for row in conn.execute(sql, params).fetchall()]
            events = [_event_of(m) for m in moved if m.status in OUTBOUND_EVENT_STATES]
            if events and self._endpoints:
                conn.execute(
                    "WITH written AS (SELECT DISTINCT tenant_id"
                    "   FROM unnest(%(ev_tenants)b::text[]) AS w(tenant_id)),"
                    f" {EVENTS_FROM_PARAMS} {OUTBOX_INSERT}",
                    outbox_params(events, self._endpoints),
                )
        return moved


def _event_of(message: OutboundMessage) -> WebhookEvent:
    """The webhook event of a message that has just reached its present state."""
    return outbound_event(
        message.tenant_id,
        message.message_id,
        str(message.status),
        message.finished_at,
        to=message.to,
        wa_message_id=message.wa_message_id,
        error=message.error,
        idempotency_key=message.idempotency_key,
    )
