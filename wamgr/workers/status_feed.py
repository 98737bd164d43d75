"""The status feed: hears every instance's status writes and tells this instance's subscribers.

One named :class:`~wamgr.workers.listening.ListeningWorker` holds a
:class:`~wamgr.store.status_feed.StatusChannel` (a connection that LISTENs on
``wamgr_status``) and hands each batch of changed tenant ids to every subscriber (the
dashboard's live view). A burst of writes within :data:`SETTLE_S` is one batch. A batch of
``None`` means "any tenant may have changed": the payload was too long, or the connection was
re-opened and notifications may have been missed meanwhile. The base re-opens a connection
that breaks and rate-limits its warning.

Subscribers run on this thread; one that raises is logged and the others still get the batch.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

from loguru import logger

from wamgr.store.db import Database
from wamgr.store.status_feed import CHANNEL, Changed, StatusChannel
from wamgr.workers.listening import ListeningWorker

#: Seconds one wait on the connection lasts at most (a stop also ends it by a notification).
WAIT_S = 5.0
#: Seconds after a first notification during which more are gathered into its batch.
SETTLE_S = 0.05

#: A subscriber: called with the ids of the tenants written, or None for "maybe all".
FeedSubscriber = Callable[[Changed], None]


class StatusFeed(ListeningWorker[StatusChannel]):
    """A named worker that LISTENs for status writes of every instance and tells subscribers.

    ``db`` is used only to wake the wait when stopping; the listening connection is opened
    on ``database_url`` by the worker itself.
    """

    what = "status feed"

    def __init__(
        self,
        db: Database,
        database_url: str,
        *,
        settle_s: float = SETTLE_S,
        connect_timeout_s: float = 10.0,
        name: str = "wamgr-status-feed",
    ):
        super().__init__(
            name,
            lambda: StatusChannel(database_url, connect_timeout_s=connect_timeout_s),
            self._notify,
        )
        self._db = db
        self._settle_s = settle_s
        self._subscribers: list[FeedSubscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, subscriber: FeedSubscriber) -> Callable[[], None]:
        """Call ``subscriber`` with every batch from now on; returns an unsubscriber."""
        with self._lock:
            self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._subscribers.remove(subscriber)

        return unsubscribe

    def on_listening(self, reopened: bool) -> None:
        """Once re-opened, tell subscribers anything may have changed (writes went unheard)."""
        if reopened:
            self._publish(None)

    def listen(self, channel: StatusChannel) -> None:
        """Wait for a batch (at most :data:`WAIT_S`) and hand it on."""
        changed = channel.wait(WAIT_S, self._settle_s, give_up=lambda: self.stopping)
        if changed is None or (changed and not self.stopping):
            self._publish(changed)

    def _notify(self) -> None:
        """Send an empty batch on the channel (ends the wait when stopping)."""
        with self._db.connection() as conn:
            conn.execute("SELECT pg_notify(%s, '')", (CHANNEL,))

    def _publish(self, changed: Changed) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            try:
                subscriber(changed)
            except Exception:
                logger.exception("a status feed subscriber failed")
