"""The outbound listener: wakes the outbound sender the moment a message is queued, on any
instance, for a tenant this instance holds.

One named :class:`~wamgr.workers.listening.ListeningWorker` per instance holds an
:class:`~wamgr.store.outbound_channel.OutboundChannel` (a connection that LISTENs on
``wamgr_outbound``) and calls ``wake`` (the sender's) at each notification for this
instance. A notification missed while the connection is re-opened costs at most the sender's
scan interval: the sender also looks by itself. The sender is in
:mod:`wamgr.workers.outbound_sender`.
"""

from __future__ import annotations

from collections.abc import Callable

from wamgr.store.db import Database
from wamgr.store.outbound_channel import OutboundChannel
from wamgr.workers.listening import ListeningWorker

#: Seconds the listener waits for a notification before it looks again.
LISTEN_POLL_S = 1.0


class OutboundListener(ListeningWorker[OutboundChannel]):
    """LISTENs for messages added anywhere for tenants this instance holds, and wakes the
    sender (``wake``, which must not block)."""

    what = "outbound listener"

    def __init__(
        self,
        db: Database,
        instance_id: str,
        wake: Callable[[], None],
        *,
        connect_timeout_s: float,
        name: str = "wamgr-outbound-listen",
    ):
        super().__init__(
            name,
            lambda: OutboundChannel(db.url, instance_id, connect_timeout_s=connect_timeout_s),
            lambda: OutboundChannel.wake(db),
        )
        self._wake = wake

    def listen(self, channel: OutboundChannel) -> None:
        """Wait for a notification to this instance (at most :data:`LISTEN_POLL_S`), and wake
        the sender if one came."""
        if channel.wait(LISTEN_POLL_S, stop=lambda: self.stopping):
            self._wake()
