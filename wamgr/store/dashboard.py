"""What the operator dashboard reads: the fleet a page at a time, a tenant's history and
deliveries, the instances and the webhook endpoints. SQL only, read-mostly.

Every read is bounded (``LIMIT``), so a page costs the same with 10 tenants or 10,000: the
fleet is filtered, counted and paged in the database, never loaded whole. Statuses are shown
as :meth:`~wamgr.store.tenants.TenantStore.get` shows them, a stale one as ``standby``.

    board = DashboardStore(db)
    page = board.fleet(state="backoff", search="shop", limit=50, offset=0)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from psycopg.rows import dict_row

from wamgr.store.db import Database
from wamgr.store.instances import InstanceClaim
from wamgr.store.tenants import STATUS_SELECT, TenantRecord, _record

#: The most rows one fleet page shows.
MAX_PAGE_ROWS = 500
#: The most tenants :meth:`DashboardStore.records` reads at once.
MAX_RECORDS = 1000


@dataclass(frozen=True, slots=True)
class FleetPage:
    """One page of the fleet: its tenants, how many match the filter in all, and how many
    tenants are in each state (over the whole fleet, whatever the filter)."""

    records: list[TenantRecord]
    total: int
    counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One change of a tenant's state, as ``wamgr_status_history`` keeps it."""

    at: datetime
    old_state: str | None
    new_state: str
    attempt: int
    detail: str | None
    owner: str | None


@dataclass(frozen=True, slots=True)
class Delivery:
    """One webhook delivery of a tenant's event, as the outbox keeps it."""

    id: int
    endpoint: str
    event_type: str
    created_at: datetime
    attempts: int
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None
    gave_up_at: datetime | None

    @property
    def outcome(self) -> str:
        """``delivered``, ``given up``, ``retrying`` (failed, tried again) or ``pending``."""
        if self.delivered_at is not None:
            return "delivered"
        if self.gave_up_at is not None:
            return "given up"
        return "retrying" if self.attempts else "pending"


@dataclass(frozen=True, slots=True)
class InstanceSummary:
    """A live instance: who runs it, since when, the leases it holds, its capacity."""

    instance_id: str
    host: str
    pid: int
    started_at: datetime
    expires_at: datetime
    leases: int
    capacity: int | None


@dataclass(frozen=True, slots=True)
class EndpointHealth:
    """A webhook endpoint: its queue and its failures."""

    url: str
    queued: int  # neither delivered nor given up
    failing: int  # queued, and failed at least once
    given_up: int
    delivered: int
    last_error: str | None  # of the newest failed delivery
    disabled_at: datetime | None
    disabled_reason: str | None


def _like(text: str) -> str:
    """``text`` as a LIKE pattern that matches it anywhere, its wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class DashboardStore:
    """The dashboard's queries; every method is one short read (or one small write)."""

    def __init__(self, db: Database):
        self._db = db

    def fleet(
        self, *, state: str | None = None, search: str = "", limit: int = 50, offset: int = 0
    ) -> FleetPage:
        """Tenants ordered by id, those in ``state`` (if given) whose id contains ``search``
        (case-insensitive), ``limit`` of them from ``offset``; with the total that match and
        the count of every state."""
        limit = max(1, min(limit, MAX_PAGE_ROWS))
        params = {
            "state": state,
            "search": _like(search) if search else None,
            "limit": limit,
            "offset": max(0, offset),
        }
        where = (
            " WHERE (%(state)s::text IS NULL OR s.state = %(state)s)"
            " AND (%(search)s::text IS NULL OR s.tenant_id ILIKE %(search)s)"
        )
        with self._db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT s.* FROM ({STATUS_SELECT}) s{where}"
                " ORDER BY s.tenant_id LIMIT %(limit)s OFFSET %(offset)s",
                params,
            ).fetchall()
            total = cur.execute(
                f"SELECT count(*) AS n FROM ({STATUS_SELECT}) s{where}", params
            ).fetchone()
            counts = cur.execute(
                f"SELECT s.state, count(*) AS n FROM ({STATUS_SELECT}) s GROUP BY s.state"
            ).fetchall()
        return FleetPage(
            [_record(row) for row in rows],
            int(total["n"]) if total else 0,
            {row["state"]: int(row["n"]) for row in counts},
        )

    def counts(self) -> dict[str, int]:
        """How many tenants are in each state (stale statuses counted as shown)."""
        with self._db.connection() as conn:
            rows = conn.execute(
                f"SELECT s.state, count(*) FROM ({STATUS_SELECT}) s GROUP BY s.state"
            ).fetchall()
        return {state: int(n) for state, n in rows}

    def records(self, tenant_ids: Iterable[str]) -> list[TenantRecord]:
        """The stored tenants among ``tenant_ids`` (at most :data:`MAX_RECORDS`), by id."""
        ids = sorted(set(tenant_ids))[:MAX_RECORDS]
        if not ids:
            return []
        with self._db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT s.* FROM ({STATUS_SELECT}) s WHERE s.tenant_id = ANY(%s)"
                " ORDER BY s.tenant_id",
                (ids,),
            ).fetchall()
        return [_record(row) for row in rows]

    def history(self, tenant_id: str, limit: int = 50) -> list[HistoryEntry]:
        """The tenant's latest changes of state, newest first."""
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT at, old_state, new_state, attempt, detail, owner"
                " FROM wamgr_status_history WHERE tenant_id = %s"
                " ORDER BY at DESC, id DESC LIMIT %s",
                (tenant_id, limit),
            ).fetchall()
        return [HistoryEntry(*row) for row in rows]

    def deliveries(self, tenant_id: str, limit: int = 20) -> list[Delivery]:
        """The tenant's latest webhook deliveries (one per event and endpoint), newest first."""
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT id, endpoint, event_type, created_at, attempts, last_status,"
                " last_error, delivered_at, gave_up_at FROM wamgr_outbox"
                " WHERE tenant_id = %s ORDER BY id DESC LIMIT %s",
                (tenant_id, limit),
            ).fetchall()
        return [Delivery(*row) for row in rows]

    def instances(self) -> list[InstanceSummary]:
        """Every live instance (by the database clock), with the live leases it holds."""
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT i.instance_id, i.host, i.pid, i.started_at, i.expires_at,"
                " (SELECT count(*) FROM wamgr_leases l WHERE l.owner = i.instance_id"
                "   AND l.expires_at > now()), i.capacity"
                " FROM wamgr_instances i WHERE i.expires_at > now() ORDER BY i.instance_id"
            ).fetchall()
        return [InstanceSummary(*row) for row in rows]

    def record_capacity(self, claim: InstanceClaim, capacity: int | None) -> None:
        """Show ``capacity`` as the capacity of the instance ``claim`` holds."""
        with self._db.connection() as conn:
            conn.execute(
                "UPDATE wamgr_instances SET capacity = %s"
                " WHERE instance_id = %s AND incarnation = %s",
                (capacity, claim.instance_id, claim.incarnation),
            )

    def endpoints(self, configured: Iterable[str] = ()) -> list[EndpointHealth]:
        """Every webhook endpoint that is ``configured``, has outbox rows or is disabled,
        ordered by URL, with its queue and failures."""
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT e.url,"
                " count(o.id) FILTER (WHERE o.delivered_at IS NULL AND o.gave_up_at IS NULL),"
                " count(o.id) FILTER (WHERE o.delivered_at IS NULL AND o.gave_up_at IS NULL"
                "   AND o.attempts > 0),"
                " count(o.id) FILTER (WHERE o.gave_up_at IS NOT NULL),"
                " count(o.id) FILTER (WHERE o.delivered_at IS NOT NULL),"
                " (SELECT f.last_error FROM wamgr_outbox f WHERE f.endpoint = e.url"
                "   AND f.last_error IS NOT NULL ORDER BY f.id DESC LIMIT 1),"
                " d.disabled_at, d.disabled_reason"
                " FROM (SELECT endpoint AS url FROM wamgr_outbox UNION"
                "       SELECT url FROM wamgr_webhook_endpoints UNION"
                "       SELECT unnest(%s::text[])) e"
                " LEFT JOIN wamgr_outbox o ON o.endpoint = e.url"
                " LEFT JOIN wamgr_webhook_endpoints d ON d.url = e.url"
                " GROUP BY e.url, d.disabled_at, d.disabled_reason ORDER BY e.url",
                (list(configured),),
            ).fetchall()
        return [EndpointHealth(*row) for row in rows]
