"""A tenant's device: the JID it is paired as, stored, and its credentials, cleared.

Used by :class:`~wamgr.actors.tenant.TenantActor` on its own thread. The JID lives in the
tenant's :class:`~wamgr.actors.tenant_status.StatusBook` (it is part of the status shown) and
in the tenants table, so a restarted instance resumes the same device and never another's.
"""

from __future__ import annotations

from loguru import logger

from wamgr.actors.tenant_status import StatusBook
from wamgr.errors import DatabaseUnavailable
from wamgr.store.tenants import TenantStore
from wamgr.transport.base import Transport


class TenantDevice:
    """Loads, stores and forgets the device of one tenant."""

    def __init__(
        self, tenant_id: str, tenants: TenantStore, transport: Transport, book: StatusBook
    ):
        self._id = tenant_id
        self._tenants = tenants
        self._transport = transport
        self._book = book
        self._log = logger.bind(tenant=tenant_id)
        self._loaded = False

    @property
    def jid(self) -> str | None:
        """The device the tenant is paired as, or None (the next link pairs a new one)."""
        return self._book.jid

    def load(self) -> None:
        """Read the stored JID once, before the first link of this actor opens."""
        if self._loaded:
            return
        record = self._tenants.get(self._id)
        if record is not None:
            self._book.jid = record.status.jid
        self._loaded = True

    def store(self, jid: str | None) -> None:
        """Remember (or, with None, forget) the device, here and in the tenants table."""
        self._book.jid = jid
        try:
            self._tenants.set_jid(self._id, jid)
        except DatabaseUnavailable as exc:
            self._log.error("could not store jid {}: {}", jid, exc.detail)

    def clear(self, why: str) -> None:
        """Delete the device's credentials (only this tenant's) and forget its JID."""
        if self._book.jid is None:
            return
        self._log.warning("clearing credentials of {} ({})", self._book.jid, why)
        try:
            self._transport.clear_auth(self._id, self._book.jid)
        except Exception:
            self._log.exception("clearing the device credentials failed")
        self.store(None)
