"""A tenant's device: the JID it is paired as, stored, and its credentials, cleared.

Used by :class:`~wamgr.actors.tenant.TenantActor` on its own thread. The JID lives in the
tenant's :class:`~wamgr.actors.tenant_status.StatusBook` (it is part of the status shown) and
in the tenants table, so a restarted instance resumes the same device and never another's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loguru import logger

from wamgr.actors.messages import Claimed
from wamgr.actors.tenant_status import StatusBook
from wamgr.errors import DatabaseUnavailable
from wamgr.store.tenants import TenantStore
from wamgr.transport.base import Transport

if TYPE_CHECKING:
    from loguru import Logger

#: ``last_error`` of a tenant whose credentials an operator cleared (the actor or the tool).
CLEARED_BY_OPERATOR = (
    "credentials cleared by the operator: connect to pair again (wamgr pair TENANT)"
)


def forget_device(
    transport: Transport, tenants: TenantStore, tenant_id: str, jid: str | None
) -> None:
    """Delete the device keys of ``jid`` (only this tenant's) and the tenant's stored JID.

    The one way wamgr forgets a device, whether a tenant's actor does it or ``wamgr
    clear-auth`` does it with no instance running. Raises DatabaseUnavailable if the JID
    cannot be forgotten; a failure to delete the keys is logged (the JID is forgotten all
    the same, so the device is never resumed).
    """
    if jid is not None:
        try:
            transport.clear_auth(tenant_id, jid)
        except Exception:
            logger.bind(tenant=tenant_id).exception("clearing the device credentials failed")
    tenants.set_jid(tenant_id, None)


class TenantDevice:
    """Loads, stores and forgets the device of one tenant."""

    __slots__ = ("_book", "_id", "_loaded", "_tenants", "_transport")

    def __init__(
        self, tenant_id: str, tenants: TenantStore, transport: Transport, book: StatusBook
    ):
        self._id = tenant_id
        self._tenants = tenants
        self._transport = transport
        self._book = book
        self._loaded = False

    @property
    def _log(self) -> Logger:  # bound when it logs: a bound logger per tenant costs ~400 bytes
        return logger.bind(tenant=self._id)

    @property
    def jid(self) -> str | None:
        """The device the tenant is paired as, or None (the next link pairs a new one)."""
        return self._book.jid

    def load(self, claimed: Claimed | None = None) -> None:
        """Read the stored JID once, before the first link of this actor opens (no statement
        with ``claimed``: a claim pass has just read it)."""
        if self._loaded:
            return
        if claimed is not None:
            self._book.jid, self._loaded = claimed.jid, True
            return
        record = self._tenants.get(self._id)
        if record is not None:
            self._book.jid = record.status.jid
        self._loaded = True

    def store(self, jid: str | None) -> None:
        """Remember (or, with None, forget) the device, here and in the tenants table.

        Raises JidInUse if another tenant is paired as ``jid``; the device is then not
        remembered, so no later link of this tenant resumes another tenant's device.
        """
        try:
            self._tenants.set_jid(self._id, jid)
        except DatabaseUnavailable as exc:
            self._log.error("could not store jid {}: {}", jid, exc.detail)
        self._book.jid = jid

    def clear(self, why: str) -> None:
        """Delete the device's credentials (only this tenant's) and forget its JID."""
        if self._book.jid is None:
            return
        self._log.warning("clearing credentials of {} ({})", self._book.jid, why)
        jid, self._book.jid = self._book.jid, None
        try:
            forget_device(self._transport, self._tenants, self._id, jid)
        except DatabaseUnavailable as exc:
            self._log.error("could not forget jid {}: {}", jid, exc.detail)
