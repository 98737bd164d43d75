"""Clearing a tenant's device credentials from outside the running instances (``wamgr clear-auth``).

Safe while other tenants run, and while other instances run: the tool takes the tenant's
lease itself (one atomic statement, as an instance would), so no instance can connect the
tenant while its keys are being deleted. A tenant whose lease a live instance holds is
refused with :class:`~wamgr.errors.HeldElsewhere`: clear it there
(``ConnectionManager.clear_auth``, the HTTP API) or stop it first.

The old fix was a script that wiped every device; this deletes one device's rows.
"""

from __future__ import annotations

import dataclasses
import os
import socket

from wamgr.actors.tenant_device import CLEARED_BY_OPERATOR, forget_device
from wamgr.errors import HeldElsewhere, UnknownTenant
from wamgr.status import TenantState, TenantStatus
from wamgr.store.db import Database
from wamgr.store.leases import LeaseStore
from wamgr.store.tenants import TenantStore
from wamgr.transport.base import Transport

#: Seconds the tool's own lease lasts (it gives it back at once when done).
LEASE_TTL_S = 60.0


def operator_id() -> str:
    """The lease owner name of this tool run."""
    return f"wamgr-clear-auth@{socket.gethostname()}-{os.getpid()}"


def clear_credentials(
    db: Database, transport: Transport, tenant_id: str, operator: str | None = None
) -> TenantStatus:
    """Delete ``tenant_id``'s device keys, forget its JID and park it in ``logged_out``.

    Raises UnknownTenant, or HeldElsewhere if a live instance holds the tenant's lease.
    """
    operator = operator or operator_id()
    tenants, leases = TenantStore(db), LeaseStore(db)
    if tenants.get(tenant_id) is None:
        raise UnknownTenant(tenant_id)
    token = leases.acquire(tenant_id, operator, LEASE_TTL_S)
    if token is None:
        holder = leases.holder(tenant_id)
        raise HeldElsewhere(
            tenant_id, holder.owner if holder else "another instance", "clear its credentials"
        )
    try:
        record = tenants.get(tenant_id)  # read again under the lease
        if record is None:
            raise UnknownTenant(tenant_id)
        old = record.status
        forget_device(transport, tenants, tenant_id, old.jid)
        status = dataclasses.replace(
            old,
            state=TenantState.LOGGED_OUT,
            jid=None,
            owner=None,
            attempt=0,
            next_retry_at=None,
            last_error=CLEARED_BY_OPERATOR,
        )
        tenants.write_statuses([(status, str(old.state))], writer=operator)
    finally:
        leases.release(tenant_id, token)
    return tenants.get(tenant_id).status  # type: ignore[union-attr]
