"""The reply listener: wakes the threads waiting for replies to their forwarded calls.

One named worker per instance holds a :class:`~wamgr.store.calls.ReplyChannel` (one
connection, whatever the number of calls in flight) and sets the event of the waiter whose
call id a reply notification names. When the connection (re)opens, every waiter is woken
once: a reply may have come while nobody listened, and the waiter looks at its row. A broken
connection is re-opened after :data:`RECONNECT_DELAY_S`. The SQL is in
:mod:`wamgr.store.calls`; the waiting itself in :class:`wamgr.forwarding.Caller`.
"""

from __future__ import annotations

import contextlib
import threading

from loguru import logger

from wamgr.errors import DatabaseUnavailable, WamgrError
from wamgr.log_limits import RateLimitedLog
from wamgr.store.calls import CallStore, ReplyChannel
from wamgr.workers.base import AT_ONCE, Worker

#: Seconds of one wait on the connection (the loop then waits again; a stop ends it at once).
LISTEN_SLICE_S = 60.0
#: Seconds to wait before re-opening a listening connection that failed.
RECONNECT_DELAY_S = 1.0
#: Seconds between two warnings of a listener that keeps failing.
WARNING_INTERVAL_S = 30.0


class ReplyListener(Worker):
    """A named worker that LISTENs for replies and wakes the waiter of each.

    ``expect(call_id)`` registers a waiter (an Event) before the call is sent; ``forget``
    drops it once the call is over. After :meth:`stop` every waiter is woken and
    :attr:`stopping` is true.
    """

    what = "reply listener"

    def __init__(
        self,
        store: CallStore,
        database_url: str,
        *,
        connect_timeout_s: float = 10.0,
        name: str = "wamgr-replies",
    ):
        super().__init__(name)
        self._store = store
        self._url = database_url
        self._connect_timeout_s = connect_timeout_s
        self._channel: ReplyChannel | None = None
        self._waiters: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._listening = threading.Event()
        self._warnings = RateLimitedLog(WARNING_INTERVAL_S)

    def expect(self, call_id: str) -> threading.Event:
        """The event set when a reply to ``call_id`` is announced (register before sending)."""
        event = threading.Event()
        with self._lock:
            self._waiters[call_id] = event
        return event

    def forget(self, call_id: str) -> None:
        """Drop the waiter of a call that is over."""
        with self._lock:
            self._waiters.pop(call_id, None)

    def wait_listening(self, timeout: float) -> bool:
        """Wait until LISTEN is in place (after :meth:`start`); whether it is."""
        return self._listening.wait(timeout)

    def iterate(self) -> float:
        """(Re)open the channel if needed, then wake the waiter of every reply announced."""
        if self._channel is None:
            self._channel = ReplyChannel(self._url, connect_timeout_s=self._connect_timeout_s)
            self._listening.set()
            self._warnings.recovered(logger, "reply listener: listening again")
            self._wake_all()  # replies that came while nobody listened
        if self.stopping:  # asked before LISTEN was in place: its notification was missed
            return AT_ONCE
        for call_id in self._channel.payloads(LISTEN_SLICE_S):
            with self._lock:
                event = self._waiters.get(call_id)
            if event is not None:
                event.set()
            if self.stopping:
                break
        return AT_ONCE

    def on_failure(self, exc: Exception) -> float:
        """Drop the connection (it may be broken) and listen again after a short delay."""
        self._close_channel()
        if self.stopping:
            return AT_ONCE
        detail = exc.detail if isinstance(exc, DatabaseUnavailable) else str(exc)
        self._warnings.warning(
            logger,
            "reply listener: {}; listening again in {:g} s (forwarded calls wait meanwhile)",
            detail,
            RECONNECT_DELAY_S,
        )
        return self.after(RECONNECT_DELAY_S)

    def on_stopping(self) -> None:
        """Notify the channel, so its wait ends now; wake every waiter (they give up)."""
        self._wake_all()
        with contextlib.suppress(WamgrError):
            self._store.wake_replies()

    def on_stop(self) -> None:
        """Close the listening connection; wake any waiter left."""
        self._close_channel()
        self._wake_all()

    def _wake_all(self) -> None:
        with self._lock:
            events = list(self._waiters.values())
        for event in events:
            event.set()

    def _close_channel(self) -> None:
        self._listening.clear()
        channel, self._channel = self._channel, None
        if channel is not None:
            with contextlib.suppress(Exception):
                channel.close()
