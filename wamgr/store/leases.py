"""The ``wamgr_leases`` table: which instance may hold a tenant's socket, with fencing tokens.

Every grant is ONE statement (insert, or take over a row that is expired or already ours)
and takes a fresh token from a sequence, so tokens only grow. Expiry is computed with the
database's clock (``now()``), never the caller's.

Grants and renewals are single statements in autocommit: the server commits each as soon as
it has run, so a process paused while waiting for the answer holds no lock on a lease row.
How long one may wait on a locked row is the session's ``lock_timeout`` (see
:class:`~wamgr.store.db.SessionLimits`); a statement that runs out of it raises
DatabaseUnavailable instead of queueing behind a stalled session.
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


@dataclass(frozen=True, slots=True)
class Grant:
    """A lease just taken: its token, and who held the row before if that was another owner
    (its lease had expired), else None."""

    token: int
    previous_owner: str | None


# The CTE reads the row as it was before this statement; the upsert takes it over only if it
# has expired or is ours already.
_TAKE = """
WITH prior AS (SELECT owner FROM wamgr_leases WHERE tenant_id = %(tenant)s)
INSERT INTO wamgr_leases (tenant_id, owner, token, expires_at)
VALUES (%(tenant)s, %(owner)s, nextval('wamgr_lease_tokens'),
        now() + %(ttl)s * interval '1 second')
ON CONFLICT (tenant_id) DO UPDATE
   SET owner = EXCLUDED.owner, token = EXCLUDED.token,
       acquired_at = now(), expires_at = EXCLUDED.expires_at
 WHERE wamgr_leases.expires_at < now() OR wamgr_leases.owner = EXCLUDED.owner
RETURNING token, (SELECT owner FROM prior)
"""


class LeaseStore:
    """Acquires, releases and lists leases."""

    def __init__(self, db: Database):
        self._db = db

    def take(self, tenant_id: str, owner: str, ttl_s: float) -> Grant | None:
        """Take the tenant's lease for ``owner`` in one statement; None if held elsewhere."""
        with self._db.connection() as conn:
            row = conn.execute(
                _TAKE, {"tenant": tenant_id, "owner": owner, "ttl": ttl_s}
            ).fetchone()
        if row is None:
            return None
        previous = row[1] if row[1] is not None and row[1] != owner else None
        return Grant(int(row[0]), previous)

    def acquire(self, tenant_id: str, owner: str, ttl_s: float) -> int | None:
        """Take the tenant's lease for ``owner``: the new token, or None if held elsewhere."""
        grant = self.take(tenant_id, owner, ttl_s)
        return grant.token if grant is not None else None

    def renew(self, owner: str, tokens: dict[str, int], ttl_s: float) -> set[str]:
        """Extend every lease in ``tokens`` (tenant -> token) still held by ``owner``, in ONE
        autocommitted statement; returns the tenants renewed. A lease missing from the result
        is lost.

        The session's statement timeout (chosen below the fence) bounds it: a slow database
        raises DatabaseUnavailable instead of holding the renewal past the caller's deadline.
        """
        if not tokens:
            return set()
        tenants, values = list(tokens), list(tokens.values())
        with self._db.connection() as conn:
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
