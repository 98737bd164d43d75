"""The outbound queue's wake-up channel: a dedicated connection that LISTENs on
``wamgr_outbound`` for messages added for the tenants this instance holds."""

from __future__ import annotations

from collections.abc import Callable

from wamgr.store.db import Database
from wamgr.store.listen import ListenChannel
from wamgr.store.outbound import CHANNEL


class OutboundChannel(ListenChannel):
    """A dedicated connection that LISTENs for messages added for tenants ``instance_id`` holds.

    Not from the pool: a LISTEN lives as long as its connection. Opening it raises
    DatabaseUnavailable if the database cannot be reached.
    """

    def __init__(self, database_url: str, instance_id: str, *, connect_timeout_s: float):
        self._me = instance_id
        super().__init__(database_url, CHANNEL, connect_timeout_s=connect_timeout_s)

    def wait(self, timeout_s: float, stop: Callable[[], bool]) -> bool:
        """Wait at most ``timeout_s`` seconds for a notification to this instance; returns
        whether one came. ``stop()`` is asked at every notification (for anyone) and ends
        the wait when true. Raises DatabaseUnavailable if the connection broke."""
        for payload in self.payloads(timeout_s):
            if stop():
                return False
            if payload == self._me:
                return True
        return False

    @staticmethod
    def wake(db: Database) -> None:
        """Send one notification (ends the wait of every listener, e.g. to stop one)."""
        with db.connection() as conn:
            conn.execute("SELECT pg_notify(%s, '')", (CHANNEL,))
