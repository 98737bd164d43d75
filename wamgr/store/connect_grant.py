"""``connect()`` in one statement: what a claim pass does for a batch, for one tenant.

``connect()`` of a tenant new to this process used to make four round trips before its link
could open: record it wanted connected, read its device, read its proxy, take its lease. At
10,000 tenants each one waits its turn on a busy database and interpreter, so the four cost
most of the call. :meth:`ConnectGrants.want` makes them ONE statement:

- the tenant is recorded wanted connected (created if new), as
  :meth:`~wamgr.store.tenants.TenantStore.set_desired` does;
- its device and proxy are read as they were when the statement started;
- its lease is taken if it is free or expired, under the batch grant's rules
  (:data:`~wamgr.store.leases.TAKE_FREE`): a lease that is ours already is left as it is
  (the tenant's actor decides it), one held unexpired by another instance is never taken.

The tenant's actor judges the grant exactly as a claim pass's (late after ``renew_deadline``
from when the statement was sent) and gives back a grant it does not use.
"""

from __future__ import annotations

from dataclasses import dataclass

from loguru import logger

from wamgr.errors import DatabaseUnavailable
from wamgr.status import Desired
from wamgr.store.db import Database
from wamgr.store.leases import TAKE_FREE, TAKE_FREE_COLUMNS, Batch, Grant, LeaseStore
from wamgr.store.tenants import WANT_CONNECTED, TenantStore

_WANT_AND_TAKE = f"""
WITH wanted AS ({WANT_CONNECTED} RETURNING 1),
ids AS (SELECT %(tenant)s::text AS tenant_id),{TAKE_FREE}
SELECT {TAKE_FREE_COLUMNS},
       (SELECT jid FROM wamgr_tenants WHERE tenant_id = %(tenant)s),
       (SELECT proxy FROM wamgr_tenant_settings WHERE tenant_id = %(tenant)s)
  FROM ids LEFT JOIN taken USING (tenant_id) LEFT JOIN prior USING (tenant_id)
"""


@dataclass(frozen=True, slots=True)
class Wanted:
    """What :meth:`ConnectGrants.want` did and read for one tenant: its lease ``batch``
    (granted, held elsewhere, or neither: undecided), and its stored device and proxy."""

    batch: Batch
    jid: str | None
    proxy: str | None


class ConnectGrants:
    """The one statement of a ``connect()``, for the instance ``leases`` is bound to."""

    def __init__(
        self, db: Database, tenants: TenantStore, leases: LeaseStore, owner: str, lease_ttl_s: float
    ):
        self._db = db
        self._tenants = tenants
        self._leases = leases
        self._owner = owner
        self._ttl_s = lease_ttl_s

    def want(self, tenant_id: str) -> Wanted:
        """Record ``tenant_id`` wanted connected, read its device and proxy, and take its
        lease if free or expired, in ONE autocommitted statement. The caller notes when it
        sent the statement: a grant is good until ``renew_deadline`` after that.

        Raises DatabaseUnavailable as every statement does.
        """
        incarnation = self._leases.incarnation_of(self._owner)
        params = {
            "tenant": tenant_id,
            "owner": self._owner,
            "incarnation": incarnation,
            "ttl": self._ttl_s,
        }
        with self._db.connection() as conn:
            row = conn.execute(_WANT_AND_TAKE, params).fetchone()
        assert row is not None  # ``ids`` has one row, and the joins keep it
        return Wanted(Batch.of_rows([row], self._owner, incarnation), row[-2], row[-1])

    def want_only(self, tenant_id: str) -> None:
        """Record ``tenant_id`` wanted connected, and nothing else (a tenant connected here
        already: its device, proxy and lease are in hand)."""
        self._tenants.set_desired(tenant_id, Desired.CONNECTED)

    def give_back(self, tenant_id: str, grant: Grant) -> None:
        """Release ``grant`` (only that token) when no actor got it, so no other instance
        waits for it to expire; if the database cannot, it expires by itself."""
        try:
            self._leases.release(tenant_id, grant.token)
        except DatabaseUnavailable as exc:
            logger.bind(tenant=tenant_id).warning(
                "could not give back an unused grant (it expires): {}", exc.detail
            )
