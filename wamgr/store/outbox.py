"""The webhook outbox: events written in the same transaction as the change they report.

A status change is written with its ``session.status`` events (:meth:`TenantStore.write_statuses`),
an inbound message id with its ``message.received`` event (:meth:`Outbox.record_inbound`), so
an event exists exactly when its change was committed. There is one row per event and
endpoint; the delivery worker (:mod:`wamgr.webhooks.sender`) claims due rows, posts them and
records the outcome. A row keeps its ``webhook_id`` on every attempt, on every instance and
across restarts, so a receiver can drop the repeats of an event it already handled.

This module is SQL only: callers pass events already built (:mod:`wamgr.webhooks.events`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from wamgr.status import validate_tenant_id
from wamgr.store.db import Database
from wamgr.store.inbound import validate_message_id
from wamgr.webhooks.events import WebhookEvent


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A delivery claimed by a worker."""

    id: int
    webhook_id: str
    endpoint: str
    event_type: str
    body: str
    attempts: int
    tenant_endpoint: bool = False  # a tenant's own endpoint, not a global one
    #: The tenant endpoint's own secret (None: sign with the global one).
    secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivery (an event for one endpoint) as operators see it."""

    id: int
    webhook_id: str
    endpoint: str
    event_type: str
    tenant_id: str | None
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    gave_up_at: datetime | None
    tenant_endpoint: bool

    @property
    def status(self) -> str:
        """``delivered``, ``dead`` (given up) or ``pending``."""
        if self.delivered_at is not None:
            return "delivered"
        return "dead" if self.gave_up_at is not None else "pending"


#: A CTE ``events(webhook_id, event_type, tenant_id, body, n)`` of events built in Python,
#: from the four arrays of :func:`outbox_params` (``n``: their order).
EVENTS_FROM_PARAMS = """
events AS (SELECT * FROM unnest(%(ev_ids)b::text[], %(ev_types)b::text[],
                                %(ev_tenants)b::text[], %(ev_bodies)b::text[])
             WITH ORDINALITY AS ev(webhook_id, event_type, tenant_id, body, n))
"""

#: SQL that inserts the rows of a CTE ``events(webhook_id, event_type, tenant_id, body, n)``
#: (:data:`EVENTS_FROM_PARAMS`, or events the statement builds itself) for every global
#: endpoint (``%(endpoints)s``) and for each of the tenant's own endpoints that wants the
#: event's type (``wamgr_tenant_settings``), skipping disabled ones, in order. Appended to a
#: statement that also has a CTE ``written(tenant_id)`` naming the rows it wrote. A tenant
#: endpoint that is also a global one gets the event once.
OUTBOX_INSERT = """
INSERT INTO wamgr_outbox (webhook_id, endpoint, event_type, tenant_id, body, tenant_endpoint)
SELECT x.webhook_id, x.url, x.event_type, x.tenant_id, x.body, x.own FROM (
  SELECT ev.webhook_id, e.url, ev.event_type, ev.tenant_id, ev.body, false AS own, ev.n, e.m
    FROM events ev
    JOIN written ON written.tenant_id = ev.tenant_id
   CROSS JOIN unnest(%(endpoints)b::text[]) WITH ORDINALITY AS e(url, m)
  UNION ALL
  SELECT ev.webhook_id, h.hook->>'url', ev.event_type, ev.tenant_id, ev.body, true, ev.n,
         1000 + h.m
    FROM events ev
    JOIN written ON written.tenant_id = ev.tenant_id
    JOIN wamgr_tenant_settings s ON s.tenant_id = ev.tenant_id
   CROSS JOIN jsonb_array_elements(s.webhooks) WITH ORDINALITY AS h(hook, m)
   WHERE jsonb_array_length(coalesce(h.hook->'events', '[]'::jsonb)) = 0
      OR h.hook->'events' ? ev.event_type
) x
 WHERE NOT EXISTS (SELECT 1 FROM wamgr_webhook_endpoints d
                    WHERE d.url = x.url AND d.disabled_at IS NOT NULL)
 ORDER BY x.n, x.m
ON CONFLICT (webhook_id, endpoint) DO NOTHING
"""

#: Rows the sender of an instance posts: to its global endpoints, and to tenants' own.
_MINE = "(endpoint = ANY(%(endpoints)s) OR tenant_endpoint)"
#: A dead delivery: given up (attempts used up, or its endpoint disabled), not delivered.
_DEAD = "gave_up_at IS NOT NULL AND delivered_at IS NULL"
#: Dead deliveries are kept this long (30 days), for `wamgr webhooks dead` and retries.
DEAD_RETENTION_S = 30 * 86_400.0


def outbox_params(events: Sequence[WebhookEvent], endpoints: Sequence[str]) -> dict:
    """The parameters of :data:`EVENTS_FROM_PARAMS` and :data:`OUTBOX_INSERT`."""
    return {
        "ev_ids": [e.webhook_id for e in events],
        "ev_types": [e.event_type for e in events],
        "ev_tenants": [e.tenant_id for e in events],
        "ev_bodies": [e.body for e in events],
        "endpoints": list(endpoints),
    }


@dataclass(frozen=True, slots=True)
class EndpointSummary:
    """What became of the deliveries to one webhook endpoint, for operators."""

    url: str
    pending: int  # neither delivered nor given up yet
    delivered: int
    given_up: int
    disabled_at: datetime | None  # when it answered 410 Gone; None if enabled


class Outbox:
    """Writes, claims and settles webhook deliveries."""

    def __init__(self, db: Database):
        self._db = db

    def record_inbound(
        self, tenant_id: str, message_id: str, event: WebhookEvent, endpoints: Sequence[str]
    ) -> bool:
        """Record ``message_id`` as seen (like :meth:`InboundLog.seen`) and, in the same
        statement, write ``event`` for ``endpoints`` if it was new; True if it was new."""
        tenant_id = validate_tenant_id(tenant_id)
        message_id = validate_message_id(message_id)
        with self._db.connection() as conn:
            row = conn.execute(
                "WITH written AS (INSERT INTO wamgr_inbound (tenant_id, message_id)"
                " VALUES (%(tenant)s, %(message)s) ON CONFLICT DO NOTHING RETURNING tenant_id),"
                f" {EVENTS_FROM_PARAMS}, ob AS ({OUTBOX_INSERT})"
                " SELECT count(*) FROM written",
                {"tenant": tenant_id, "message": message_id, **outbox_params([event], endpoints)},
            ).fetchone()
        return bool(row and row[0])

    def record_events(self, events: Sequence[WebhookEvent], endpoints: Sequence[str]) -> int:
        """Write ``events`` (of existing tenants) for ``endpoints`` and the tenants' own
        endpoints that want them; returns how many deliveries were written."""
        if not events:
            return 0
        with self._db.connection() as conn:
            cur = conn.execute(
                "WITH written AS (SELECT tenant_id FROM wamgr_tenants"
                "   WHERE tenant_id = ANY(%(ev_tenants)b::text[])),"
                f" {EVENTS_FROM_PARAMS} {OUTBOX_INSERT}",
                outbox_params(events, endpoints),
            )
            return cur.rowcount

    def claim_due(
        self, worker: str, endpoints: Sequence[str], limit: int, claim_s: float
    ) -> list[OutboxRow]:
        """Claim up to ``limit`` due deliveries to ``endpoints`` (and to tenants' own
        endpoints, with their secrets) for ``claim_s`` seconds, oldest first; rows another
        worker holds (claimed and unexpired) are skipped.

        Rows of a disabled endpoint are never claimed; the same statement gives them up. A row
        written while the endpoint was being disabled (its insert saw the endpoint enabled) is
        thereby given up at the next pass instead of being sent.
        """
        with self._db.connection() as conn:
            rows = conn.execute(
                "WITH gone AS (UPDATE wamgr_outbox o SET gave_up_at = now(),"
                "   claimed_until = NULL,"
                "   last_error = 'endpoint disabled: ' || coalesce(d.disabled_reason, '')"
                "   FROM wamgr_webhook_endpoints d"
                "  WHERE d.url = o.endpoint AND d.disabled_at IS NOT NULL"
                "    AND (o.endpoint = ANY(%(endpoints)s) OR o.tenant_endpoint)"
                "    AND o.delivered_at IS NULL"
                "    AND o.gave_up_at IS NULL)"
                " UPDATE wamgr_outbox o SET claimed_by = %(worker)s,"
                " claimed_until = now() + %(claim)s * interval '1 second'"
                " WHERE o.id IN (SELECT id FROM wamgr_outbox"
                f"   WHERE {_MINE} AND delivered_at IS NULL"
                "   AND gave_up_at IS NULL AND next_attempt_at <= now()"
                "   AND (claimed_until IS NULL OR claimed_until < now())"
                "   AND NOT EXISTS (SELECT 1 FROM wamgr_webhook_endpoints d"
                "                    WHERE d.url = endpoint AND d.disabled_at IS NOT NULL)"
                "   ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)"
                " RETURNING o.id, o.webhook_id, o.endpoint, o.event_type, o.body, o.attempts,"
                " o.tenant_endpoint, CASE WHEN o.tenant_endpoint THEN (SELECT h->>'secret'"
                "   FROM wamgr_tenant_settings s, jsonb_array_elements(s.webhooks) h"
                "   WHERE s.tenant_id = o.tenant_id AND h->>'url' = o.endpoint LIMIT 1) END",
                {
                    "worker": worker,
                    "claim": claim_s,
                    "endpoints": list(endpoints),
                    "limit": limit,
                },
            ).fetchall()
        return sorted((OutboxRow(*row) for row in rows), key=lambda r: r.id)

    def delivered(self, row_id: int, status: int) -> None:
        """Record a delivery the endpoint accepted."""
        with self._db.connection() as conn:
            conn.execute(
                "UPDATE wamgr_outbox SET delivered_at = now(), attempts = attempts + 1,"
                " last_status = %s, last_error = NULL, claimed_until = NULL WHERE id = %s",
                (status, row_id),
            )

    def failed(self, row_id: int, status: int | None, error: str, retry_in_s: float | None) -> None:
        """Record a failed attempt: retry in ``retry_in_s`` seconds, or give up (None)."""
        with self._db.connection() as conn:
            conn.execute(
                "UPDATE wamgr_outbox SET attempts = attempts + 1, last_status = %(status)s,"
                " last_error = %(error)s, claimed_until = NULL,"
                " next_attempt_at = CASE WHEN %(retry)s::float8 IS NULL THEN next_attempt_at"
                "   ELSE now() + %(retry)s::float8 * interval '1 second' END,"
                " gave_up_at = CASE WHEN %(retry)s::float8 IS NULL THEN now() END"
                " WHERE id = %(id)s",
                {"status": status, "error": error[:1000], "retry": retry_in_s, "id": row_id},
            )

    def unclaim(self, row_ids: Sequence[int]) -> None:
        """Hand claimed rows back untouched (a stopping worker's unsent batch)."""
        if not row_ids:
            return
        with self._db.connection() as conn:
            conn.execute(
                "UPDATE wamgr_outbox SET claimed_until = NULL WHERE id = ANY(%s)", (list(row_ids),)
            )

    def disable_endpoint(self, url: str, reason: str) -> int:
        """Stop writing and sending events for ``url``; its pending rows are given up.
        Returns how many pending rows were given up."""
        with self._db.connection() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO wamgr_webhook_endpoints (url, disabled_at, disabled_reason)"
                " VALUES (%s, now(), %s) ON CONFLICT (url) DO UPDATE"
                " SET disabled_at = now(), disabled_reason = EXCLUDED.disabled_reason",
                (url, reason),
            )
            cur = conn.execute(
                "UPDATE wamgr_outbox SET gave_up_at = now(), claimed_until = NULL,"
                " last_error = %s WHERE endpoint = %s AND delivered_at IS NULL"
                " AND gave_up_at IS NULL",
                (f"endpoint disabled: {reason}", url),
            )
            return cur.rowcount

    def enable_endpoint(self, url: str) -> bool:
        """Write and send events for ``url`` again; returns whether it was disabled."""
        with self._db.connection() as conn:
            cur = conn.execute("DELETE FROM wamgr_webhook_endpoints WHERE url = %s", (url,))
            return cur.rowcount > 0

    def disabled_endpoints(self) -> dict[str, tuple[datetime, str | None]]:
        """Every disabled endpoint: url -> (disabled at, reason)."""
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT url, disabled_at, disabled_reason FROM wamgr_webhook_endpoints"
                " WHERE disabled_at IS NOT NULL ORDER BY url"
            ).fetchall()
        return {url: (at, reason) for url, at, reason in rows}

    def pending(self, endpoints: Sequence[str]) -> tuple[int, float | None]:
        """How many deliveries to ``endpoints`` (and tenants' own) wait, and in how many
        seconds the next is due (0 if one is due now; None if none waits)."""
        with self._db.connection() as conn:
            row = conn.execute(
                "SELECT count(*), extract(epoch FROM min(greatest(next_attempt_at,"
                "   coalesce(claimed_until, next_attempt_at))) - now())"
                f" FROM wamgr_outbox WHERE {_MINE} AND delivered_at IS NULL"
                " AND gave_up_at IS NULL",
                {"endpoints": list(endpoints)},
            ).fetchone()
        assert row is not None
        due = None if row[1] is None else max(0.0, float(row[1]))
        return int(row[0]), due

    def sweep(self, retention_s: float, dead_retention_s: float = DEAD_RETENTION_S) -> int:
        """Delete rows delivered more than ``retention_s`` seconds ago, and dead ones given
        up more than ``dead_retention_s`` ago."""
        with self._db.connection() as conn:
            cur = conn.execute(
                "DELETE FROM wamgr_outbox WHERE delivered_at < now() - %s * interval '1 second'"
                f" OR ({_DEAD} AND gave_up_at < now() - %s * interval '1 second')",
                (retention_s, dead_retention_s),
            )
            return cur.rowcount

    def deliveries(
        self, status: str | None = None, tenant_id: str | None = None, limit: int = 100
    ) -> list[Delivery]:
        """Deliveries, newest first: ``dead``, ``pending``, ``delivered`` or all (None), of
        one tenant or all, at most ``limit``."""
        where = {
            None: "true",
            "dead": _DEAD,
            "pending": "delivered_at IS NULL AND gave_up_at IS NULL",
            "delivered": "delivered_at IS NOT NULL",
        }[status]
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT id, webhook_id, endpoint, event_type, tenant_id, attempts, last_status,"
                " last_error, created_at, delivered_at, gave_up_at, tenant_endpoint"
                f" FROM wamgr_outbox WHERE {where}"
                " AND (%(tenant)s::text IS NULL OR tenant_id = %(tenant)s)"
                " ORDER BY id DESC LIMIT %(limit)s",
                {"tenant": tenant_id, "limit": limit},
            ).fetchall()
        return [Delivery(*row) for row in rows]

    def retry_dead(self, delivery_ids: Sequence[int] | None) -> list[int]:
        """Send dead deliveries again (those of ``delivery_ids``, or every one with None):
        each keeps its row and its ``webhook_id``, gets a fresh count of attempts and is due
        now. Deliveries to a disabled endpoint stay dead. Returns the ids made pending."""
        with self._db.connection() as conn:
            rows = conn.execute(
                "UPDATE wamgr_outbox o SET gave_up_at = NULL, attempts = 0,"
                " next_attempt_at = now(), claimed_until = NULL"
                f" WHERE {_DEAD} AND (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s))"
                " AND NOT EXISTS (SELECT 1 FROM wamgr_webhook_endpoints d"
                "                  WHERE d.url = o.endpoint AND d.disabled_at IS NOT NULL)"
                " RETURNING id",
                {"ids": None if delivery_ids is None else list(delivery_ids)},
            ).fetchall()
        return sorted(row[0] for row in rows)

    def rows(self, endpoint: str | None = None) -> list[dict]:
        """Every outbox row (for an endpoint), oldest first: for operators and tests."""
        with self._db.connection() as conn:
            cur = conn.execute(
                "SELECT id, webhook_id, endpoint, event_type, tenant_id, attempts, last_status,"
                " last_error, delivered_at, gave_up_at FROM wamgr_outbox"
                " WHERE %(endpoint)s::text IS NULL OR endpoint = %(endpoint)s ORDER BY id",
                {"endpoint": endpoint},
            )
            names = [d.name for d in cur.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def endpoint_summaries(self) -> list[EndpointSummary]:
        """One summary per endpoint that has outbox rows or is disabled, ordered by URL."""
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT e.url, count(o.id) FILTER (WHERE o.delivered_at IS NULL"
                "   AND o.gave_up_at IS NULL),"
                " count(o.id) FILTER (WHERE o.delivered_at IS NOT NULL),"
                " count(o.id) FILTER (WHERE o.gave_up_at IS NOT NULL), d.disabled_at"
                " FROM (SELECT endpoint AS url FROM wamgr_outbox UNION"
                "       SELECT url FROM wamgr_webhook_endpoints) e"
                " LEFT JOIN wamgr_outbox o ON o.endpoint = e.url"
                " LEFT JOIN wamgr_webhook_endpoints d ON d.url = e.url"
                " GROUP BY e.url, d.disabled_at ORDER BY e.url"
            ).fetchall()
        return [EndpointSummary(*row) for row in rows]
