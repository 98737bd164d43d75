"""The live view: status changes from every instance pushed to open pages by Server-Sent Events.

The runtime's :class:`~wamgr.workers.status_feed.StatusFeed` hears every status write in the
database (any instance's) and calls :meth:`LiveHub.changed` on its thread. If pages are
open, the hub reads the changed tenants once (one bounded query, and the counts by state)
and queues the same message for every open stream; each stream (an ``EventSource`` in the
page) sends it on. Events:

- ``status``: ``{"tenants": [...], "counts": {...}}``, the changed tenants as
  :func:`~wamgr.web.views.tenant_json` gives them;
- ``reload``: too much changed (or changes may have been missed): read the page again.

A stream that falls :data:`QUEUE_SIZE` messages behind gets one ``reload`` instead. Every
:data:`KEEPALIVE_S` a comment line keeps proxies from closing an idle stream; ``retry``
tells the browser to come back within a second when the server restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from loguru import logger

from wamgr.errors import WamgrError
from wamgr.store.dashboard import MAX_RECORDS, DashboardStore
from wamgr.store.status_feed import Changed
from wamgr.web.views import tenant_json

if TYPE_CHECKING:
    from wamgr.manager import ConnectionManager
    from wamgr.workers.status_feed import StatusFeed

#: Messages a stream may fall behind before it is told to reload instead.
QUEUE_SIZE = 64
#: Seconds between two keep-alive comments of an idle stream.
KEEPALIVE_S = 15.0
#: Milliseconds a browser waits before reconnecting a stream that ended.
RETRY_MS = 1000

RELOAD = "event: reload\ndata: {}\n\n"
#: What a stream is given to end (the app is going away; the browser comes back later).
_END = ""


class _Stream:
    """One open page: its queue and the event loop that drains it."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_SIZE)

    def offer(self, message: str) -> None:
        """Queue ``message`` (on the loop's thread); a full queue is told to reload."""
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(RELOAD)

    def end(self) -> None:
        """Make the stream end after what it has queued (on the loop's thread)."""
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(_END)


class LiveHub:
    """Fans the status feed out to the open pages of one app."""

    def __init__(self, manager: ConnectionManager):
        self._manager = manager
        self._lock = threading.Lock()
        self._streams: set[_Stream] = set()
        self._feed: StatusFeed | None = None
        self._unsubscribe: Callable[[], None] | None = None

    @property
    def streams(self) -> int:
        """How many pages are open."""
        with self._lock:
            return len(self._streams)

    def changed(self, changed: Changed) -> None:
        """Tell every open page what ``changed`` (called on the status feed's thread)."""
        with self._lock:
            streams = list(self._streams)
        if not streams:
            return
        try:
            message = self._message(changed)
        except WamgrError as exc:
            logger.warning("dashboard: could not read the changed tenants: {}", exc)
            message = RELOAD
        for stream in streams:
            with contextlib.suppress(RuntimeError):  # its loop has closed: the page is gone
                stream.loop.call_soon_threadsafe(stream.offer, message)

    async def stream(self) -> AsyncIterator[str]:
        """The text of one page's event stream, until the page goes away (call
        :meth:`attach` first)."""
        stream = _Stream(asyncio.get_running_loop())
        with self._lock:
            self._streams.add(stream)
        try:
            yield f"retry: {RETRY_MS}\n: connected\n\n"
            while True:
                try:
                    message = await asyncio.wait_for(stream.queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    message = ": keep-alive\n\n"
                if message == _END:
                    return
                yield message
        finally:
            with self._lock:
                self._streams.discard(stream)

    def close(self) -> None:
        """Stop listening to the feed and end every open stream (the server is stopping:
        a stream never ends by itself, and would hold the server's graceful stop up)."""
        with self._lock:
            unsubscribe, self._unsubscribe, self._feed = self._unsubscribe, None, None
            streams = list(self._streams)
        if unsubscribe is not None:
            unsubscribe()
        for stream in streams:
            with contextlib.suppress(RuntimeError):
                stream.loop.call_soon_threadsafe(stream.end)

    def attach(self) -> None:
        """Listen to the running manager's feed (again, if the manager was restarted);
        ManagerStopped if it is not running."""
        feed = self._manager.runtime.status_feed
        with self._lock:
            if feed is self._feed:
                return
            old, self._unsubscribe = self._unsubscribe, feed.subscribe(self.changed)
            self._feed = feed
        if old is not None:
            old()

    def _message(self, changed: Changed) -> str:
        if changed is None or len(changed) > MAX_RECORDS:
            return RELOAD
        board: DashboardStore = self._manager.runtime.dashboard
        data = {
            "tenants": [tenant_json(r) for r in board.records(changed)],
            "counts": board.counts(),
        }
        return f"event: status\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
