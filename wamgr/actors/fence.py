"""LinkFence: lets the LeaseKeeper close a tenant's link without waiting for the tenant.

A tenant's actor handles one message at a time; while it waits on something (a slow
statement, a slow transport call) a ``LeaseLost`` queued behind it would wait too, and the
socket would outlive the lease. So every grant comes with a fence: the tenant *arms* it with
the link it is about to open, and the keeper *trips* it when the lease is lost, which closes
that link (without logout) from the keeper's thread at once. The tenant learns of it the
usual way, from the link's ``Closed`` (and the ``LeaseLost`` the keeper also sends), and
asks :attr:`LinkFence.tripped` to tell a fenced close from any other.

Thread-safe: one lock guards the two fields; the link is closed outside it (every Link's
``close`` is non-blocking and may be called from any thread, any number of times).
"""

from __future__ import annotations

import threading

from loguru import logger

from wamgr.transport.base import Link


class LinkFence:
    """The fence of one lease grant: at most one link, closed when the fence trips."""

    __slots__ = ("_link", "_lock", "_tripped", "tenant_id", "token")

    def __init__(self, tenant_id: str, token: int):
        self.tenant_id = tenant_id
        self.token = token
        self._lock = threading.Lock()
        self._link: Link | None = None
        self._tripped = False

    @property
    def tripped(self) -> bool:
        """Whether the keeper fenced this grant (its link, if any, was told to close)."""
        with self._lock:
            return self._tripped

    def arm(self, link: Link) -> bool:
        """Guard ``link`` (before it opens); False if the fence tripped already: do not open it."""
        with self._lock:
            if self._tripped:
                return False
            self._link = link
            return True

    def trip(self, why: str) -> None:
        """Fence the grant: close the armed link now, without logout, on the caller's thread."""
        with self._lock:
            if self._tripped:
                return
            self._tripped = True
            link, self._link = self._link, None
        if link is None:
            return
        logger.bind(tenant=self.tenant_id).warning("fenced ({}): closing the link", why)
        try:
            link.close(do_logout=False)
        except Exception:
            logger.bind(tenant=self.tenant_id).exception("closing a fenced link failed")

    def __repr__(self) -> str:
        return (
            f"LinkFence(tenant_id={self.tenant_id!r}, token={self.token}, tripped={self._tripped})"
        )
