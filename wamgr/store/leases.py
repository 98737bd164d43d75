"""The ``wamgr_leases`` table: which instance may hold a tenant's socket, with fencing tokens.

Every grant is ONE statement (insert, or take over a row that is expired or already ours)
and takes a fresh token from a sequence, so tokens only grow. Expiry is computed with the
database's clock (``now()``), never the caller's.

A lease belongs to one process incarnation, never to a name two processes could share: a
manager's store is bound to its :class:`~wamgr.store.instances.InstanceClaim`, and then
every grant carries the claim's incarnation and is made only while that claim holds its
instance row; a renewal renews the instance row and the leases in one statement, and renews
nothing once the row is no longer ours (another process took the id over after our claim
expired), so the keeper fences every link. A lease of another incarnation is never "ours",
whatever its owner's name: a second process with the same instance id can neither take nor
renew it. An unbound store (tools such as ``wamgr clear-auth``, which hold a lease for a
moment under a name unique to their process) takes leases without an incarnation.

Grants and renewals are single statements in autocommit: the server commits each as soon as
it has run, so a process paused while waiting for the answer holds no lock on a lease row.
How long one may wait on a locked row is the session's ``lock_timeout`` (see
:class:`~wamgr.store.db.SessionLimits`); a statement that runs out of it raises
DatabaseUnavailable instead of queueing behind a stalled session.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from wamgr.store.db import Database
from wamgr.store.instances import InstanceClaim

#: The NOTIFY channel on which an instance that gives leases up says so; the payload is its
#: instance id (an empty payload only ends a wait: see :meth:`LeaseStore.notify_freed`).
FREED_CHANNEL = "wamgr_leases_freed"


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


@dataclass(frozen=True, slots=True)
class Batch:
    """The outcome of :meth:`LeaseStore.take_many`: the tenants ``granted`` (with their
    grants), and those whose unexpired lease another holder keeps (``held``: tenant -> its
    owner, which may be our own name under an earlier incarnation). A tenant in neither was
    left undecided: its lease is ours already, or was taken while the statement ran, or our
    instance row is not ours; its own :meth:`LeaseStore.take` decides it."""

    granted: dict[str, Grant]
    held: dict[str, str]

    @classmethod
    def of_rows(
        cls, rows: Iterable[Sequence[Any]], owner: str, incarnation: uuid.UUID | None
    ) -> Batch:
        """The batch :data:`TAKE_FREE` made for ``owner`` (of ``incarnation``), from the rows
        of :data:`TAKE_FREE_COLUMNS` (any columns after those are ignored)."""
        granted: dict[str, Grant] = {}
        held: dict[str, str] = {}
        for tenant_id, token, prior_owner, prior_incarnation, expired, *_ in rows:
            ours = prior_owner == owner and prior_incarnation == incarnation
            if token is not None:
                previous = None if prior_owner is None or ours else prior_owner
                granted[tenant_id] = Grant(int(token), previous)
            elif prior_owner is not None and not expired and not ours:
                held[tenant_id] = prior_owner
        return cls(granted, held)


@dataclass(frozen=True, slots=True)
class Renewed:
    """The outcome of one renewal: whether our instance row is still ours (False: every lease
    is lost), and the tenants whose lease was extended."""

    instance_held: bool
    tenants: frozenset[str]


# ``prior`` reads the row as it was before this statement. ``me`` has one row if the grant
# may be made: always for an unbound store (no incarnation), else only while our claim holds
# its instance row. The upsert takes a row over only if it has expired, or is ours already:
# same owner AND same incarnation (NULL for a tool).
_TAKE = """
WITH prior AS (SELECT owner, incarnation FROM wamgr_leases WHERE tenant_id = %(tenant)s),
me AS (
    SELECT 1 WHERE %(incarnation)s::uuid IS NULL
    UNION ALL
    SELECT 1 FROM wamgr_instances
     WHERE instance_id = %(owner)s AND incarnation = %(incarnation)s::uuid
       AND expires_at > now()
)
INSERT INTO wamgr_leases AS l (tenant_id, owner, incarnation, token, expires_at)
SELECT %(tenant)s, %(owner)s, %(incarnation)s::uuid, nextval('wamgr_lease_tokens'),
       now() + %(ttl)s * interval '1 second'
  FROM me
ON CONFLICT (tenant_id) DO UPDATE
   SET owner = EXCLUDED.owner, incarnation = EXCLUDED.incarnation, token = EXCLUDED.token,
       acquired_at = now(), expires_at = EXCLUDED.expires_at
 WHERE l.expires_at < now()
    OR (l.owner = EXCLUDED.owner AND l.incarnation IS NOT DISTINCT FROM EXCLUDED.incarnation)
RETURNING token, (SELECT owner FROM prior), (SELECT incarnation FROM prior)
"""

#: The batch grant, after a CTE ``ids`` (the tenants): like _TAKE for many tenants, but only
#: rows that are free or expired (a lease that is ours already keeps its token: the tenant
#: holding it may run a link under it). Rows are visited in tenant order, so two instances
#: taking overlapping batches lock them in the same order. ``prior`` reads the rows as they
#: were before this statement. Its rows, in the order :meth:`Batch.of_rows` reads them, are
#: :data:`TAKE_FREE_COLUMNS` from ``ids LEFT JOIN taken LEFT JOIN prior``.
TAKE_FREE = """
prior AS (
    SELECT l.tenant_id, l.owner, l.incarnation, l.expires_at < now() AS expired
      FROM wamgr_leases l JOIN ids USING (tenant_id)
),
me AS (
    SELECT 1 WHERE %(incarnation)s::uuid IS NULL
    UNION ALL
    SELECT 1 FROM wamgr_instances
     WHERE instance_id = %(owner)s AND incarnation = %(incarnation)s::uuid
       AND expires_at > now()
),
taken AS (
    INSERT INTO wamgr_leases AS l (tenant_id, owner, incarnation, token, expires_at)
    SELECT c.tenant_id, %(owner)s, %(incarnation)s::uuid, nextval('wamgr_lease_tokens'),
           now() + %(ttl)s * interval '1 second'
      FROM (SELECT ids.tenant_id FROM ids LEFT JOIN prior USING (tenant_id)
             WHERE prior.tenant_id IS NULL OR prior.expired
             ORDER BY ids.tenant_id) AS c, me
     ORDER BY c.tenant_id
    ON CONFLICT (tenant_id) DO UPDATE
       SET owner = EXCLUDED.owner, incarnation = EXCLUDED.incarnation, token = EXCLUDED.token,
           acquired_at = now(), expires_at = EXCLUDED.expires_at
     WHERE l.expires_at < now()
    RETURNING l.tenant_id, l.token
)
"""
TAKE_FREE_COLUMNS = "ids.tenant_id, taken.token, prior.owner, prior.incarnation, prior.expired"
_TAKE_MANY = f"""
WITH ids AS (SELECT DISTINCT unnest(%(tenants)b::text[]) AS tenant_id),{TAKE_FREE}
SELECT {TAKE_FREE_COLUMNS}
  FROM ids LEFT JOIN taken USING (tenant_id) LEFT JOIN prior USING (tenant_id)
"""

# ONE statement: extend our instance row (if it is still ours, whether or not it has expired:
# nobody took it over then), and, only if it was, every lease of ``tokens`` that we hold.
_RENEW = """
WITH me AS (
    UPDATE wamgr_instances SET expires_at = now() + %(ttl)s * interval '1 second'
     WHERE instance_id = %(owner)s AND incarnation = %(incarnation)s
    RETURNING instance_id
), renewed AS (
    UPDATE wamgr_leases l SET expires_at = now() + %(ttl)s * interval '1 second'
      FROM unnest(%(tenants)b::text[], %(tokens)b::bigint[]) AS h(tenant_id, token)
     WHERE l.tenant_id = h.tenant_id AND l.token = h.token AND l.owner = %(owner)s
       AND l.incarnation = %(incarnation)s AND EXISTS (SELECT 1 FROM me)
    RETURNING l.tenant_id
)
SELECT EXISTS (SELECT 1 FROM me), ARRAY(SELECT tenant_id FROM renewed)
"""


# ONE statement: give up the leases no other statement has locked (a renewal locks its rows
# in an order of its own, so waiting for them could deadlock), count those still ours that
# were skipped, and, if any was given up, tell the other instances (the notification is
# delivered when the statement commits, after the rows are gone).
_RELEASE_OWNED = """
WITH mine AS (
    SELECT tenant_id FROM wamgr_leases
     WHERE owner = %(owner)s AND tenant_id = ANY(%(tenants)b::text[])
       AND incarnation IS NOT DISTINCT FROM %(incarnation)s::uuid
), free AS (
    SELECT l.tenant_id FROM wamgr_leases l JOIN mine USING (tenant_id)
       FOR UPDATE OF l SKIP LOCKED
), freed AS (
    DELETE FROM wamgr_leases l USING free f WHERE l.tenant_id = f.tenant_id
    RETURNING l.tenant_id
), counted AS (SELECT count(*) AS n FROM freed)
SELECT n, (SELECT count(*) FROM mine) - n,
       CASE WHEN n > 0 THEN pg_notify(%(channel)s, %(owner)s)::text END
  FROM counted
"""

#: Seconds :meth:`LeaseStore.release_owned` waits between passes over leases another
#: statement had locked, and for how long it makes passes at most (a renewal holds them
#: ~0.1 s).
RELEASE_RETRY_S = 0.02
RELEASE_WITHIN_S = 1.0


class LeaseStore:
    """Acquires, renews, releases and lists leases; bound to ``claim`` for a manager."""

    def __init__(self, db: Database, claim: InstanceClaim | None = None):
        self._db = db
        self._claim = claim

    def take(self, tenant_id: str, owner: str, ttl_s: float) -> Grant | None:
        """Take the tenant's lease for ``owner`` in one statement; None if held elsewhere.

        A bound store takes it only for its claim's instance id (ValueError for another
        ``owner``), under its incarnation, and only while the claim holds its instance row.
        ``previous_owner`` names the holder we took an expired lease over from: another
        instance, or an earlier incarnation of ours.
        """
        incarnation = self.incarnation_of(owner)
        with self._db.connection() as conn:
            row = conn.execute(
                _TAKE,
                {"tenant": tenant_id, "owner": owner, "incarnation": incarnation, "ttl": ttl_s},
            ).fetchone()
        if row is None:
            return None
        token, prior_owner, prior_incarnation = row
        ours = prior_owner == owner and prior_incarnation == incarnation
        return Grant(int(token), None if prior_owner is None or ours else prior_owner)

    def take_many(self, tenant_ids: list[str], owner: str, ttl_s: float) -> Batch:
        """Take the leases of ``tenant_ids`` that are free or expired for ``owner``, in ONE
        statement (a claim pass's batch), under the same rules as :meth:`take`: a lease held
        unexpired by another owner is never taken, and every grant gets a fresh token.

        Unlike :meth:`take`, a lease that is ours already is left as it is (its token too):
        the tenant holding it may run a link under it, so it is left undecided. Expiry is
        judged by the database's clock at the start of the statement; the caller must note
        when it *sent* the statement (a grant is good until ``renew_deadline`` after that).
        """
        if not tenant_ids:
            return Batch({}, {})
        incarnation = self.incarnation_of(owner)
        with self._db.connection() as conn:
            rows = conn.execute(
                _TAKE_MANY,
                {
                    "tenants": list(tenant_ids),
                    "owner": owner,
                    "incarnation": incarnation,
                    "ttl": ttl_s,
                },
            ).fetchall()
        return Batch.of_rows(rows, owner, incarnation)

    def acquire(self, tenant_id: str, owner: str, ttl_s: float) -> int | None:
        """Take the tenant's lease for ``owner``: the new token, or None if held elsewhere."""
        grant = self.take(tenant_id, owner, ttl_s)
        return grant.token if grant is not None else None

    def renew(self, owner: str, tokens: dict[str, int], ttl_s: float) -> Renewed:
        """Extend our instance row and every lease in ``tokens`` (tenant -> token) still held
        by it, in ONE autocommitted statement (a bound store only; ``owner`` is its instance
        id). A lease missing from the result is lost; ``instance_held`` False means the
        instance id is another process's now, and every lease is lost.

        The session's statement timeout (chosen below the fence) bounds it: a slow database
        raises DatabaseUnavailable instead of holding the renewal past the caller's deadline.
        """
        incarnation = self.incarnation_of(owner)
        if incarnation is None:
            raise ValueError("renewing leases needs a LeaseStore bound to an instance claim")
        with self._db.connection() as conn:
            row = conn.execute(
                _RENEW,
                {
                    "owner": owner,
                    "incarnation": incarnation,
                    "ttl": ttl_s,
                    "tenants": list(tokens),
                    "tokens": list(tokens.values()),
                },
            ).fetchone()
        assert row is not None
        return Renewed(bool(row[0]), frozenset(row[1]))

    def release(self, tenant_id: str, token: int) -> bool:
        """Give the lease up if ``token`` is still the current one; returns whether it was."""
        with self._db.connection() as conn:
            cur = conn.execute(
                "DELETE FROM wamgr_leases WHERE tenant_id = %s AND token = %s", (tenant_id, token)
            )
            return cur.rowcount > 0

    def release_owned(
        self, owner: str, tenant_ids: list[str], within_s: float = RELEASE_WITHIN_S
    ) -> int:
        """Give up ``owner``'s leases of ``tenant_ids``; returns the count.

        If any was given up, the same statement sends ``NOTIFY wamgr_leases_freed, owner``
        (delivered once it has committed), so the other instances claim them at once.
        A bound store gives up only the leases of its own incarnation. Leases another
        statement holds locked (a renewal under way) are not waited for, which could
        deadlock, but given up in the next pass, :data:`RELEASE_RETRY_S` later; no pass
        starts ``within_s`` seconds after the first (what is left expires by itself)."""
        if not tenant_ids:
            return 0
        params = {
            "owner": owner,
            "tenants": list(tenant_ids),
            "incarnation": self.incarnation_of(owner),
            "channel": FREED_CHANNEL,
        }
        freed = 0
        end = time.monotonic() + within_s
        while True:
            with self._db.connection() as conn:
                row = conn.execute(_RELEASE_OWNED, params).fetchone()
            assert row is not None  # ``counted`` has one row
            freed += int(row[0])
            if not row[1] or time.monotonic() + RELEASE_RETRY_S > end:
                return freed  # all freed, or out of time for another pass
            time.sleep(RELEASE_RETRY_S)

    def notify_freed(self, payload: str) -> None:
        """Send ``NOTIFY wamgr_leases_freed, payload`` (an empty payload frees nothing: it
        only ends a :class:`FreedChannel` wait, for a listener that stops)."""
        with self._db.connection() as conn:
            conn.execute("SELECT pg_notify(%s, %s)", (FREED_CHANNEL, payload))

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
        """How many unexpired leases ``owner`` holds (a bound store: its incarnation), by the
        database clock."""
        incarnation = self.incarnation_of(owner)
        with self._db.connection() as conn:
            row = conn.execute(
                "SELECT count(*) FROM wamgr_leases WHERE owner = %s AND expires_at > now()"
                " AND incarnation IS NOT DISTINCT FROM %s::uuid",
                (owner, incarnation),
            ).fetchone()
        return int(row[0]) if row else 0

    def next_expiry_elsewhere(self, owner: str) -> float | None:
        """Seconds (by the database clock) until the soonest live lease of another owner
        expires, or None if another owner holds none: when a crashed holder's tenants are
        free to take."""
        with self._db.connection() as conn:
            row = conn.execute(
                "SELECT extract(epoch FROM min(expires_at) - now())::float8 FROM wamgr_leases"
                " WHERE owner <> %s AND expires_at >= now()",
                (owner,),
            ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def database_now(self) -> datetime:
        """The database's clock now: the clock every lease expiry is set and judged by (a
        lease has expired when ``expires_at <= database_now()``, whatever the caller's clock
        says)."""
        with self._db.connection() as conn:
            row = conn.execute("SELECT now()").fetchone()
        assert row is not None
        return row[0]

    def incarnation_of(self, owner: str) -> uuid.UUID | None:
        """The incarnation leases of ``owner`` are taken under: the bound claim's (which must
        be ``owner``'s), or None for an unbound store."""
        if self._claim is None:
            return None
        if owner != self._claim.instance_id:
            raise ValueError(
                f"this lease store is bound to instance {self._claim.instance_id!r}, not {owner!r}"
            )
        return self._claim.incarnation
