"""The channel on which instances say they gave leases up (``NOTIFY wamgr_leases_freed``).

:meth:`~wamgr.store.leases.LeaseStore.release_owned` sends the notification in the statement
that gives the leases up; :class:`FreedChannel` is how another instance hears it.
"""

from __future__ import annotations

from collections.abc import Callable

from wamgr.store.leases import FREED_CHANNEL
from wamgr.store.listen import ListenChannel


class FreedChannel(ListenChannel):
    """A dedicated connection that LISTENs for leases other instances give up.

    It is not from the pool: a LISTEN lives as long as its connection. Opening it raises
    DatabaseUnavailable if the database cannot be reached.
    """

    def __init__(self, database_url: str, *, connect_timeout_s: float):
        super().__init__(database_url, FREED_CHANNEL, connect_timeout_s=connect_timeout_s)

    def wait(
        self, timeout_s: float, *, ignore: str, give_up: Callable[[], bool] = lambda: False
    ) -> bool:
        """Wait at most ``timeout_s`` seconds until an instance other than ``ignore`` says it
        gave leases up; returns whether one did. ``give_up()`` is asked at every notification
        and ends the wait when true. Raises DatabaseUnavailable if the connection broke (close
        it and open a new channel)."""
        for payload in self.payloads(timeout_s):
            if payload and payload != ignore:
                return True
            if give_up():
                return False
        return False
