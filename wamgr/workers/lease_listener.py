"""The freed-lease listener: wakes the claim loop the moment another instance gives leases up.

An instance that stops releases the leases of the links it closed in one statement that also
sends ``NOTIFY wamgr_leases_freed, '<its id>'`` (see
:meth:`~wamgr.store.leases.LeaseStore.release_owned`). One named
:class:`~wamgr.workers.listening.ListeningWorker` per instance holds a
:class:`~wamgr.store.freed_channel.FreedChannel` (a connection that LISTENs, not one per tenant) and
wakes the claim loop on every such notification, so the tenants are claimed within a
fraction of a second instead of at the next claim pass. A notification can be missed (the
connection was being re-opened); the claim loop's own passes catch up then.
"""

from __future__ import annotations

from collections.abc import Callable

from loguru import logger

from wamgr.store.freed_channel import FreedChannel
from wamgr.store.leases import LeaseStore
from wamgr.workers.listening import ListeningWorker

#: Seconds one wait on the channel lasts before it is started again (nothing is polled).
WAIT_S = 60.0


class FreedLeaseListener(ListeningWorker[FreedChannel]):
    """A named worker that calls ``on_freed()`` whenever another instance frees leases.

    ``on_freed`` runs on this thread and must not block (the claim loop's ``wake``). ``stop``
    sends an empty notification (it frees nothing) to end the wait at once.
    """

    what = "freed-lease listener"

    def __init__(
        self,
        leases: LeaseStore,
        database_url: str,
        instance_id: str,
        on_freed: Callable[[], None],
        *,
        connect_timeout_s: float = 10.0,
        name: str = "wamgr-freed-leases",
    ):
        super().__init__(
            name,
            lambda: FreedChannel(database_url, connect_timeout_s=connect_timeout_s),
            lambda: leases.notify_freed(""),
        )
        self._me = instance_id
        self._on_freed = on_freed

    def listen(self, channel: FreedChannel) -> None:
        """Wait for one notification from another instance, and wake the claim loop."""
        if channel.wait(WAIT_S, ignore=self._me, give_up=lambda: self.stopping):
            logger.debug("another instance freed leases: claiming now")
            self._on_freed()
