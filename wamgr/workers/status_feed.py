"""The status feed: hears every instance's status writes and tells this instance's subscribers.

One named worker holds a :class:`~wamgr.store.status_feed.StatusChannel` (a connection that
LISTENs on ``wamgr_status``) and hands each batch of changed tenant ids to every subscriber
(the dashboard's live view). A burst of writes within :data:`SETTLE_S` is one batch. A batch
of ``None`` means "any tenant may have changed": the payload was too long, or the connection
was re-opened and notifications may have been missed meanwhile. A connection that breaks is
re-opened after :data:`RECONNECT_DELAY_S`; while it keeps failing, the warning is written
once per :data:`WARNING_INTERVAL_S`.

Subscribers run on this thread; one that raises is logged and the others still get the batch.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

from loguru import logger

from wamgr.errors import DatabaseUnavailable, WamgrError
from wamgr.log_limits import RateLimitedLog
from wamgr.store.db import Database
from wamgr.store.status_feed import CHANNEL, Changed, StatusChannel
from wamgr.workers.base import AT_ONCE, Worker

#: Seconds one wait on the connection lasts at most (a stop also ends it by a notification).
WAIT_S = 5.0
#: Seconds after a first notification during which more are gathered into its batch.
SETTLE_S = 0.05
#: Seconds to wait before re-opening a listening connection that failed.
RECONNECT_DELAY_S = 1.0
#: Seconds between two warnings of a feed that keeps failing.
WARNING_INTERVAL_S = 30.0

#: A subscriber: called with the ids of the tenants written, or None for "maybe all".
FeedSubscriber = Callable[[Changed], None]


class StatusFeed(Worker):
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
        super().__init__(name)
        self._db = db
        self._url = database_url
        self._settle_s = settle_s
        self._connect_timeout_s = connect_timeout_s
        self._channel: StatusChannel | None = None
        self._subscribers: list[FeedSubscriber] = []
        self._lock = threading.Lock()
        self._listening = threading.Event()
        self._warnings = RateLimitedLog(WARNING_INTERVAL_S)

    def subscribe(self, subscriber: FeedSubscriber) -> Callable[[], None]:
        """Call ``subscriber`` with every batch from now on; returns an unsubscriber."""
        with self._lock:
            self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._subscribers.remove(subscriber)

        return unsubscribe

    def wait_listening(self, timeout: float) -> bool:
        """Wait until LISTEN is in place (after :meth:`start`); False after ``timeout``."""
        return self._listening.wait(timeout)

    def iterate(self) -> float:
        """(Re)open the channel if needed, then wait for a batch and hand it on."""
        if self._channel is None:
            self._channel = StatusChannel(self._url, connect_timeout_s=self._connect_timeout_s)
            reopened = self._listening.is_set()
            self._listening.set()
            self._warnings.recovered(logger, "status feed: listening again")
            if reopened:
                self._publish(None)  # writes while we were away went unheard
        changed = self._channel.wait(WAIT_S, self._settle_s, give_up=lambda: self.stopping)
        if changed is None or (changed and not self.stopping):
            self._publish(changed)
        return AT_ONCE

    def on_failure(self, exc: Exception) -> float:
        """Drop the connection (it may be broken) and listen again after a short delay."""
        self._close_channel()
        if self.stopping:
            return AT_ONCE
        if isinstance(exc, WamgrError):
            detail = exc.detail if isinstance(exc, DatabaseUnavailable) else exc.format_message()
            self._warnings.warning(
                logger, "status feed: {}; listening again in {:g} s", detail, RECONNECT_DELAY_S
            )
        else:
            logger.opt(exception=exc).error(
                "status feed failed; listening again in {:g} s", RECONNECT_DELAY_S
            )
        return self.after(RECONNECT_DELAY_S)

    def on_stopping(self) -> None:
        """Notify the channel (an empty batch), so the wait ends now."""
        with contextlib.suppress(WamgrError), self._db.connection() as conn:
            conn.execute("SELECT pg_notify(%s, '')", (CHANNEL,))

    def on_stop(self) -> None:
        """Close the listening connection."""
        self._close_channel()

    def _publish(self, changed: Changed) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            try:
                subscriber(changed)
            except Exception:
                logger.exception("a status feed subscriber failed")

    def _close_channel(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            with contextlib.suppress(Exception):
                channel.close()
