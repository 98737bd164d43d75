"""The ``wamgr_tenants`` table: what is wanted of each tenant and what it is doing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from psycopg.errors import UniqueViolation
from psycopg.rows import dict_row

from wamgr.errors import JidInUse
from wamgr.status import Desired, TenantState, TenantStatus, status_columns
from wamgr.store.db import Database
from wamgr.store.outbox import OUTBOX_INSERT
from wamgr.store.status_feed import CHANNEL as STATUS_CHANNEL
from wamgr.store.status_feed import PAYLOAD_SQL
from wamgr.webhooks.events import STATUS_EVENTS_SQL

# A stored status is stale when it says its owner runs a link (connecting, pairing,
# connected: states entered only under a lease) but that owner holds no live lease on the
# tenant, by the database's clock: the owner died, or lost the database, without writing
# its last status. It is shown as `standby` (`stopped` if not wanted connected), with no
# owner, and `last_error` saying what the owner showed and why that no longer holds.
_STALE = (
    "t.state IN ('connecting', 'pairing', 'connected') AND t.owner IS NOT NULL"
    " AND (l.owner IS DISTINCT FROM t.owner OR l.expires_at <= now())"
)
_STALE_WHY = (
    "'stale status: ' || t.owner || ' showed ' || t.state || ' but ' || CASE"
    " WHEN l.tenant_id IS NULL THEN 'holds no lease on it'"
    " WHEN l.owner <> t.owner THEN l.owner || ' holds its lease now'"
    " ELSE 'its lease expired at '"
    "   || to_char(l.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC' END"
)
_COLUMNS = (
    "t.tenant_id, t.desired, t.jid, t.attempt, t.next_retry_at, t.updated_at,"
    " l.expires_at AS lease_expires_at,"
    f" CASE WHEN {_STALE} THEN (CASE WHEN t.desired = 'stopped' THEN 'stopped' ELSE 'standby'"
    "   END) ELSE t.state END AS state,"
    f" CASE WHEN {_STALE} THEN NULL ELSE t.owner END AS owner,"
    f" CASE WHEN {_STALE} THEN {_STALE_WHY} ELSE t.last_error END AS last_error"
)
_FROM = "wamgr_tenants t LEFT JOIN wamgr_leases l ON l.tenant_id = t.tenant_id"
#: Every tenant's status as :meth:`TenantStore.get` shows it (stale ones as such), for readers
#: that filter, order and page it themselves (the dashboard, :mod:`wamgr.store.dashboard`).
STATUS_SELECT = f"SELECT {_COLUMNS} FROM {_FROM}"


@dataclass(frozen=True, slots=True)
class TenantRecord:
    """A tenant as stored: its desired state, its last written status, its lease's expiry."""

    desired: Desired
    status: TenantStatus
    lease_expires_at: datetime | None = None


def _record(row: dict) -> TenantRecord:
    status = TenantStatus(
        tenant_id=row["tenant_id"],
        state=TenantState(row["state"]),
        jid=row["jid"],
        owner=row["owner"],
        attempt=row["attempt"],
        next_retry_at=row["next_retry_at"],
        last_error=row["last_error"],
        updated_at=row["updated_at"],
    )
    return TenantRecord(Desired(row["desired"]), status, row["lease_expires_at"])


#: Record tenant ``%(tenant)s`` wanted connected, creating it if new; a row only when that
#: changed something (also a CTE of :mod:`wamgr.store.connect_grant`'s one statement).
WANT_CONNECTED = (
    "INSERT INTO wamgr_tenants (tenant_id, desired) VALUES (%(tenant)s, 'connected')"
    " ON CONFLICT (tenant_id) DO UPDATE SET desired = 'connected', updated_at = now()"
    " WHERE wamgr_tenants.desired <> 'connected'"
)


class TenantStore:
    """Reads and writes tenants; every method is one short statement or transaction."""

    def __init__(self, db: Database):
        self._db = db

    def set_desired(self, tenant_id: str, desired: Desired) -> bool:
        """Record what is wanted of ``tenant_id``, creating it if new; returns whether it changed.

        Creating a tenant with ``desired=stopped`` is a no-op (there is nothing to stop).
        """
        with self._db.connection() as conn:
            if desired is Desired.STOPPED:
                cur = conn.execute(
                    "UPDATE wamgr_tenants SET desired = 'stopped', updated_at = now()"
                    " WHERE tenant_id = %s AND desired <> 'stopped'",
                    (tenant_id,),
                )
            else:
                cur = conn.execute(WANT_CONNECTED, {"tenant": tenant_id})
            return cur.rowcount > 0

    def add(self, tenant_id: str) -> bool:
        """Create ``tenant_id`` wanted connected if it is new; returns whether this call
        created it (of many concurrent calls for one new tenant, exactly one does). A known
        tenant is left as it is."""
        with self._db.connection() as conn:
            created = conn.execute(
                "INSERT INTO wamgr_tenants (tenant_id, desired) VALUES (%s, 'connected')"
                " ON CONFLICT (tenant_id) DO NOTHING RETURNING tenant_id",
                (tenant_id,),
            ).fetchone()
        return created is not None

    def get(self, tenant_id: str) -> TenantRecord | None:
        """The stored tenant, or None if unknown. A status whose owner no longer holds a live
        lease on the tenant is shown as such (``standby``, see ``_STALE``), not as stored."""
        with self._db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"SELECT {_COLUMNS} FROM {_FROM} WHERE t.tenant_id = %s", (tenant_id,)
            ).fetchone()
        return _record(row) if row else None

    def all(self) -> list[TenantRecord]:
        """Every stored tenant, ordered by id (stale statuses shown as in :meth:`get`)."""
        with self._db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(f"SELECT {_COLUMNS} FROM {_FROM} ORDER BY t.tenant_id").fetchall()
        return [_record(row) for row in rows]

    def jids(self, tenant_ids: Sequence[str]) -> dict[str, str | None]:
        """The device each of ``tenant_ids`` is paired as (None: none yet), in one statement;
        unknown tenants are left out."""
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT tenant_id, jid FROM wamgr_tenants WHERE tenant_id = ANY(%s)",
                (list(tenant_ids),),
            ).fetchall()
        return dict(rows)

    def desired_connected(self) -> list[str]:
        """Ids of every tenant that should be connected."""
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT tenant_id FROM wamgr_tenants WHERE desired = 'connected' ORDER BY tenant_id"
            ).fetchall()
        return [row[0] for row in rows]

    def claimable(self, owner: str) -> list[str]:
        """Desired-connected tenants that ``owner`` may connect now, ordered by id.

        Left out: tenants whose lease another owner holds unexpired, tenants parked for an
        operator (conflict, logged_out, failed), and banned tenants whose ban has not expired.
        Every time here is compared on the database's clock (see :meth:`write_statuses`).
        """
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT t.tenant_id FROM wamgr_tenants t"
                " LEFT JOIN wamgr_leases l ON l.tenant_id = t.tenant_id"
                " WHERE t.desired = 'connected'"
                " AND t.state NOT IN ('conflict', 'logged_out', 'failed')"
                " AND (t.state <> 'banned' OR t.next_retry_at IS NULL"
                "      OR t.next_retry_at <= now())"
                " AND (l.tenant_id IS NULL OR l.expires_at < now() OR l.owner = %s)"
                " ORDER BY t.tenant_id",
                (owner,),
            ).fetchall()
        return [row[0] for row in rows]

    def set_jid(self, tenant_id: str, jid: str | None) -> None:
        """Store (or, with None, forget) the device a tenant is paired as.

        Raises JidInUse, naming the owner, when another tenant is paired as ``jid``: the
        column is unique, so two tenants never share a device, even when they pair at once.
        """
        with self._db.connection() as conn:
            try:
                conn.execute(
                    "UPDATE wamgr_tenants SET jid = %s, updated_at = now() WHERE tenant_id = %s",
                    (jid, tenant_id),
                )
            except UniqueViolation as exc:  # wamgr_tenants_jid_key: only the jid is written
                row = conn.execute(
                    "SELECT tenant_id FROM wamgr_tenants WHERE jid = %s", (jid,)
                ).fetchone()
                raise JidInUse(tenant_id, str(jid), row[0] if row else None) from exc

    def delete(self, tenant_id: str) -> bool:
        """Forget a tenant entirely (its lease too); returns whether it existed."""
        with self._db.connection() as conn, conn.transaction():
            conn.execute("DELETE FROM wamgr_leases WHERE tenant_id = %s", (tenant_id,))
            cur = conn.execute("DELETE FROM wamgr_tenants WHERE tenant_id = %s", (tenant_id,))
            return cur.rowcount > 0

    def write_statuses(
        self,
        changes: Sequence[tuple[TenantStatus, str | None]],
        writer: str,
        reported: Sequence[tuple[TenantStatus, str | None]] = (),
        endpoints: Sequence[str] = (),
    ) -> int:
        """Write many ``(status, old_state)`` changes of instance ``writer`` in one transaction.

        Fenced: a change is written only if no *other* instance holds a live lease on the
        tenant, so a stale or standby instance never overwrites the holder's status. A state
        change also adds a history row.

        ``next_retry_at`` is stored on the database's clock: it was computed on the writer's
        clock, so it is moved by the difference between the status's ``updated_at`` (same
        clock) and ``now()``. A host whose clock is off (or a status written late) then
        stores a retry that is as far in the future as the writer meant, or a little later,
        never earlier; a ban's expiry compared with ``now()`` (see :meth:`claimable`) holds.

        Once committed, the ids of the tenants written are notified on
        :data:`~wamgr.store.status_feed.CHANNEL` (the dashboards of every instance listen).

        Each ``(status, old_state)`` of ``reported`` (changes of these tenants, the ones
        between two writes included) becomes a ``session.status`` webhook event, built by
        the statement (:data:`~wamgr.webhooks.events.STATUS_EVENTS_SQL`). It goes to the
        outbox for every one of ``endpoints`` and the tenant's own endpoints that want it,
        and only for the tenants whose row was written.
        Returns how many rows were written.
        """
        if not changes:
            return 0
        outbox = ""
        params: dict = {**status_columns(changes), "writer": writer}
        if reported:  # the global endpoints and the tenants' own (see OUTBOX_INSERT)
            outbox = (
                f", written AS (SELECT tenant_id FROM upd), {STATUS_EVENTS_SQL},"
                f" ob AS ({OUTBOX_INSERT})"
            )
            params.update(status_columns(reported, "se_"), endpoints=list(endpoints))
        # The arrays go in binary: psycopg's text format escapes every element in Python.
        with self._db.connection() as conn, conn.transaction():
            written = conn.execute(
                "WITH c AS (SELECT tenant_id, state, owner, attempt, last_error, old_state,"
                "   retry + (now() - COALESCE(stamp, now())) AS next_retry_at"
                "   FROM unnest(%(tenants)b::text[], %(states)b::text[],"
                "   %(owners)b::text[], %(attempts)b::int[], %(retries)b::timestamptz[],"
                "   %(errors)b::text[], %(stamps)b::timestamptz[], %(olds)b::text[])"
                "   AS c(tenant_id, state, owner, attempt, retry, last_error, stamp, old_state)),"
                " allowed AS (SELECT c.* FROM c WHERE NOT EXISTS ("
                "   SELECT 1 FROM wamgr_leases l WHERE l.tenant_id = c.tenant_id"
                "   AND l.owner <> %(writer)s AND l.expires_at > now())),"
                " upd AS (UPDATE wamgr_tenants t SET state = a.state, owner = a.owner,"
                "   attempt = a.attempt, next_retry_at = a.next_retry_at,"
                "   last_error = a.last_error, updated_at = now()"
                "   FROM allowed a WHERE t.tenant_id = a.tenant_id RETURNING t.tenant_id),"
                " hist AS (INSERT INTO wamgr_status_history"
                "   (tenant_id, old_state, new_state, attempt, detail, owner)"
                "   SELECT a.tenant_id, a.old_state, a.state, a.attempt, a.last_error, a.owner"
                "   FROM allowed a JOIN upd USING (tenant_id)"
                "   WHERE a.old_state IS DISTINCT FROM a.state)"
                f"{outbox}"
                # Every instance's dashboard hears of the rows written (store/status_feed.py).
                f" SELECT count(*), CASE WHEN count(*) > 0 THEN pg_notify('{STATUS_CHANNEL}',"
                f"   {PAYLOAD_SQL}) END FROM upd",
                params,
            ).fetchone()
        return int(written[0]) if written else 0
