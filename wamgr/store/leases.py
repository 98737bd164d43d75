"""The ``wamgr_leases`` table: which instance may hold a tenant's socket, with fencing tokens.

Every grant is ONE statement (insert, or take over a row that is expired or already ours)
and takes a fresh token from a sequence, so tokens only grow. Expiry is computed with the
database's clock (``now()``), never the caller's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from wamgr.store.db import Database


@dataclass(frozen=True, slots=True)
class Lease:
    """A lease row as stored."""

    tenant_id: str
    owner: str
    token: int
    expires_at: datetime


_ACQUIRE = """
INSERT INTO wamgr_leases (tenant_id, owner, token, expires_at)
VALUES (%(tenant)s, %(owner)s, nextval('wamgr_lease_tokens'),
        now() + %(ttl)s * interval '1 second')
ON CONFLICT (tenant_id) DO UPDATE
   SET owner = EXCLUDED.owner, token = EXCLUDED.token,
       acquired_at = now(), expires_at = EXCLUDED.expires_at
 WHERE wamgr_leases.expires_at < now() OR wamgr_leases.owner = EXCLUDED.owner
RETURNING token
"""


class LeaseStore:
    """Acquires, releases and lists leases."""

    def __init__(self, db: Database):
        self._db = db

    def acquire(self, tenant_id: str, owner: str, ttl_s: float) -> int | None:
        """Take the tenant's lease for ``owner``: the new token, or None if held elsewhere."""
        with self._db.connection() as conn:
            row = conn.execute(
                _ACQUIRE, {"tenant": tenant_id, "owner": owner, "ttl": ttl_s}
            ).fetchone()
        return int(row[0]) if row else None

    def renew(self, owner: str, tokens: dict[str, int], ttl_s: float, timeout_s: float) -> set[str]:
        """Extend every lease in ``tokens`` (tenant -> token) still held by ``owner``, in ONE
        statement; returns the tenants renewed. A lease missing from the result is lost.

        The statement gives up after ``timeout_s`` (raising DatabaseUnavailable), so a slow
        database cannot hold the renewal past the caller's deadline.
        """
        if not tokens:
            return set()
        tenants, values = list(tokens), list(tokens.values())
        with self._db.connection() as conn, conn.transaction():
            conn.execute(f"SET LOCAL statement_timeout = {max(1, int(timeout_s * 1000))}")
            rows = conn.execute(
                "UPDATE wamgr_leases l SET expires_at = now() + %s * interval '1 second'"
                " FROM unnest(%s::text[], %s::bigint[]) AS h(tenant_id, token)"
                " WHERE l.tenant_id = h.tenant_id AND l.token = h.token AND l.owner = %s"
                " RETURNING l.tenant_id",
                (ttl_s, tenants, values, owner),
            ).fetchall()
        return {row[0] for row in rows}

    def release(self, tenant_id: str, token: int) -> bool:
        """Give the lease up if ``token`` is still the current one; returns whether it was."""
        with self._db.connection() as conn:
            cur = conn.execute(
                "DELETE FROM wamgr_leases WHERE tenant_id = %s AND token = %s", (tenant_id, token)
            )
            return cur.rowcount > 0

    def release_owned(self, owner: str, tenant_ids: list[str]) -> int:
        """Give up ``owner``'s leases of ``tenant_ids`` in one statement; returns the count."""
        if not tenant_ids:
            return 0
        with self._db.connection() as conn:
            cur = conn.execute(
                "DELETE FROM wamgr_leases WHERE owner = %s AND tenant_id = ANY(%s)",
                (owner, tenant_ids),
            )
            return cur.rowcount

    def holder(self, tenant_id: str) -> Lease | None:
        """The current lease of a tenant (expired or not), or None."""
        with self._db.connection() as conn:
            row = conn.execute(
                "SELECT tenant_id, owner, token, expires_at FROM wamgr_leases WHERE tenant_id = %s",
                (tenant_id,),
            ).fetchone()
        return Lease(*row) if row else None

    def all(self) -> list[Lease]:
        """Every lease row, ordered by tenant."""
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT tenant_id, owner, token, expires_at FROM wamgr_leases ORDER BY tenant_id"
            ).fetchall()
        return [Lease(*row) for row in rows]

    def clear(self, tenant_id: str | None = None) -> int:
        """Delete one tenant's lease (every lease if ``tenant_id`` is None); returns the count."""
        with self._db.connection() as conn:
            if tenant_id is None:
                cur = conn.execute("DELETE FROM wamgr_leases")
            else:
                cur = conn.execute("DELETE FROM wamgr_leases WHERE tenant_id = %s", (tenant_id,))
            return cur.rowcount

    def live_owner(self, tenant_id: str) -> str | None:
        """The instance holding the tenant's unexpired lease (by the database clock), or None."""
        with self._db.connection() as conn:
            row = conn.execute(
                "SELECT owner FROM wamgr_leases WHERE tenant_id = %s AND expires_at > now()",
                (tenant_id,),
            ).fetchone()
        return row[0] if row else None

    def count_live(self, owner: str) -> int:
        """How many unexpired leases ``owner`` holds, by the database clock."""
        with self._db.connection() as conn:
            row = conn.execute(
                "SELECT count(*) FROM wamgr_leases WHERE owner = %s AND expires_at > now()",
                (owner,),
            ).fetchone()
        return int(row[0]) if row else 0

    def database_now(self) -> datetime:
        """The database's clock now: the clock every lease expiry is set and judged by (a
        lease has expired when ``expires_at <= database_now()``, whatever the caller's clock
        says)."""
        with self._db.connection() as conn:
            row = conn.execute("SELECT now()").fetchone()
        assert row is not None
        return row[0]
