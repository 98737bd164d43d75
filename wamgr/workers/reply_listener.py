"""The reply listener: wakes the threads waiting for replies to their forwarded calls.

One named :class:`~wamgr.workers.listening.ListeningWorker` per instance holds a
:class:`~wamgr.store.calls.ReplyChannel` (one connection, whatever the number of calls in
flight) and sets the event of the waiter whose call id a reply notification names. Each time
the connection (re)opens, every waiter is woken once: a reply may have come while nobody
listened, and the waiter looks at its row. The base re-opens a connection that breaks. The
SQL is in :mod:`wamgr.store.calls`; the waiting itself in :class:`wamgr.forwarding.Caller`.
"""

from __future__ import annotations

import threading

from wamgr.store.calls import CallStore, ReplyChannel
from wamgr.workers.listening import ListeningWorker

#: Seconds of one wait on the connection (the loop then waits again; a stop ends it at once).
LISTEN_SLICE_S = 60.0


class ReplyListener(ListeningWorker[ReplyChannel]):
    """A named worker that LISTENs for replies and wakes the waiter of each.

    ``expect(call_id)`` registers a waiter (an Event) before the call is sent; ``forget``
    drops it once the call is over. After :meth:`stop` every waiter is woken and
    :attr:`stopping` is true.
    """

    what = "reply listener"
    while_down = " (forwarded calls wait meanwhile)"

    def __init__(
        self,
        store: CallStore,
        database_url: str,
        *,
        connect_timeout_s: float = 10.0,
        name: str = "wamgr-replies",
    ):
        super().__init__(
            name,
            lambda: ReplyChannel(database_url, connect_timeout_s=connect_timeout_s),
            store.wake_replies,
        )
        self._waiters: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

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

    def on_listening(self, reopened: bool) -> None:
        """Wake every waiter: replies that came while nobody listened go unannounced."""
        self._wake_all()

    def listen(self, channel: ReplyChannel) -> None:
        """Wake the waiter of every reply announced within :data:`LISTEN_SLICE_S`."""
        for call_id in channel.payloads(LISTEN_SLICE_S):
            with self._lock:
                event = self._waiters.get(call_id)
            if event is not None:
                event.set()
            if self.stopping:
                break

    def on_stopping(self) -> None:
        """Wake every waiter (they give up), and end the wait on the channel now."""
        self._wake_all()
        super().on_stopping()

    def on_stop(self) -> None:
        """Close the listening connection; wake any waiter left."""
        super().on_stop()
        self._wake_all()

    def _wake_all(self) -> None:
        with self._lock:
            events = list(self._waiters.values())
        for event in events:
            event.set()
