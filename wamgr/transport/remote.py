"""Links whose sockets live in another process, reached over one connected socket.

A :class:`LinkChannel` is one connection to a link server (a ``wamgr sim`` server over TCP,
a neonize host process over a socket pair; see :mod:`wamgr.transport.link_server`). It
carries every link of that server: a reader thread hands events to the links and replies to
the callers waiting for them. When the connection ends (the server went away, the host
process died), every link still on it reports ``Closed(NETWORK)`` with a detail saying why,
so the supervisor's backoff reconnects them, somewhere that works.

Writes go through a queue and one writer thread, so no caller (a tenant's actor, the lease
keeper fencing a link) ever waits on a server that stopped reading. With
:class:`ChannelTimeouts`, a channel also notices a server that stopped *answering* (a
partition, a paused process): it sends a ping whenever it has been idle for the keep-alive
interval and drops the connection when nothing at all arrived within the keep-alive timeout
(its links report ``Closed(KEEPALIVE_TIMEOUT)``), and a link whose dial got no answer within
the dial timeout reports ``Closed(DIAL_FAILED)`` and is closed on the server.

The links themselves are :class:`~wamgr.transport.remote_link.RemoteLink` (re-exported
here with :class:`~wamgr.transport.remote_link.RemoteRefused`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loguru import logger

from wamgr.transport.base import Closed, CloseReason
from wamgr.transport.remote_link import RemoteLink, RemoteRefused
from wamgr.transport.wire import decode_event, send_line

__all__ = ["REQUEST_TIMEOUT_S", "ChannelTimeouts", "LinkChannel", "RemoteLink", "RemoteRefused"]

#: Seconds to wait for the server to answer a request (send, pair code, stats).
REQUEST_TIMEOUT_S = 10.0

#: Writer-queue item that shuts our write side once everything queued before it is sent.
_SHUT_WRITE = object()
#: Writer-queue item that ends the writer thread.
_STOP = object()


@dataclass(frozen=True, slots=True)
class ChannelTimeouts:
    """Bounds on a channel's server, in seconds (None: no bound).

    ``dial_s``: a link whose ``open`` got no event back within it fails (DIAL_FAILED).
    ``keepalive_interval_s``: a ping is sent whenever nothing was sent for this long.
    ``keepalive_timeout_s``: the connection is dropped when nothing arrived for this long
    (and every link on it reports KEEPALIVE_TIMEOUT); also the bound on one write.
    """

    dial_s: float | None = None
    keepalive_interval_s: float | None = None
    keepalive_timeout_s: float | None = None

    def tick(self) -> float | None:
        """How often the writer wakes to ping and check dials, if at all."""
        ticks = [t for t in (self.keepalive_interval_s, self.dial_s and self.dial_s / 4) if t]
        return min(ticks) if ticks else None


_request_ids = itertools.count(1)


class LinkChannel:
    """One connection to a link server, shared by all the links it hosts.

    ``describe_loss`` is called once the connection has ended and returns the detail of
    the ``Closed(NETWORK)`` that the links still open report ("simulator connection lost",
    "neonize host 123 exited with code -6"...). ``on_lost`` runs after that, and
    ``on_link_closed`` after each link's ``Closed`` was handed on.
    """

    def __init__(
        self,
        sock: socket.socket,
        name: str,
        describe_loss: Callable[[], str],
        on_lost: Callable[[LinkChannel], None] | None = None,
        on_link_closed: Callable[[LinkChannel], None] | None = None,
        timeouts: ChannelTimeouts | None = None,
    ):
        self.name = name
        self.sock = sock
        self.timeouts = timeouts or ChannelTimeouts()
        self._describe_loss = describe_loss
        self._on_lost = on_lost
        self._on_link_closed = on_link_closed
        self._lock = threading.Lock()  # guards links, dials, replies and the alive flag
        self._links: dict[int, RemoteLink] = {}
        self._dialing: dict[int, float] = {}  # link id -> monotonic deadline of its dial
        self._replies: dict[int, tuple[threading.Event, list[dict[str, Any]]]] = {}
        self._alive = True
        self._silent = False  # the keep-alive timeout ended the connection
        self._outbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        sock.settimeout(self.timeouts.keepalive_timeout_s)  # bounds every read and write
        self._reader = threading.Thread(target=self._read, name=f"wamgr-{name}-reader", daemon=True)
        self._writer = threading.Thread(
            target=self._write, name=f"wamgr-{name}-writer", daemon=True
        )
        self._reader.start()
        self._writer.start()

    @property
    def alive(self) -> bool:
        """False once the connection has ended (nothing can be sent any more)."""
        return self._alive

    def link_count(self) -> int:
        """How many links on this channel have not reported ``Closed`` yet."""
        with self._lock:
            return len(self._links)

    def reserve(self, link: RemoteLink) -> None:
        """Count ``link`` on this channel before it opens (see :meth:`link_count`)."""
        with self._lock:
            self._links[link.link_id] = link

    def attach(self, link: RemoteLink, message: dict[str, Any]) -> None:
        """Route ``link``'s events here and queue ``message`` (its ``open``); raises OSError
        if the connection is gone. Never waits for the server."""
        with self._lock:
            if not self._alive:
                raise OSError(f"{self.name}: connection lost")
            self._links[link.link_id] = link
            if self.timeouts.dial_s is not None:
                self._dialing[link.link_id] = time.monotonic() + self.timeouts.dial_s
            self._outbox.put(message)

    def detach(self, link_id: int) -> None:
        """Stop routing events to ``link_id``."""
        with self._lock:
            self._links.pop(link_id, None)
            self._dialing.pop(link_id, None)

    def send(self, message: dict[str, Any]) -> None:
        """Queue one message for the server; raises OSError if the connection is gone.

        Never waits for the server: a write that cannot finish within the keep-alive timeout
        drops the connection instead (its links report ``Closed``).
        """
        with self._lock:
            if not self._alive:
                raise OSError(f"{self.name}: connection lost")
            self._outbox.put(message)

    def ask(self, message: dict[str, Any], timeout: float = REQUEST_TIMEOUT_S) -> dict[str, Any]:
        """Send a request and wait (at most ``timeout``) for its reply.

        Raises OSError if the connection is gone, TimeoutError if no reply came in time.
        """
        req = next(_request_ids)
        done = threading.Event()
        box: list[dict[str, Any]] = []
        with self._lock:
            self._replies[req] = (done, box)
        try:
            self.send({**message, "req": req})
            if not done.wait(timeout):
                raise TimeoutError(f"{self.name} did not answer within {timeout:g} s")
            return box[0]
        finally:
            with self._lock:
                self._replies.pop(req, None)

    def close(self) -> None:
        """Tell the server we are done (it closes our links and, for a host, exits).

        Our write side is shut once what is queued has been sent; the reader keeps reading
        until the server hangs up, so ``Closed`` events it still sends arrive.
        """
        self._outbox.put(_SHUT_WRITE)

    def abort(self) -> None:
        """Drop the connection at once, both ways."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def wait_closed(self, timeout: float) -> bool:
        """Wait until the reader has seen the end of the connection."""
        self._reader.join(timeout)
        return not self._reader.is_alive()

    # --- the reader ---------------------------------------------------------------------

    def _read(self) -> None:
        try:
            with self.sock.makefile("rb") as lines:
                for raw in lines:
                    self._dispatch(json.loads(raw))
        except TimeoutError:
            self._silent = True
            logger.warning(
                "{} sent nothing for {:g} s (keep-alive): dropping the connection",
                self.name,
                self.timeouts.keepalive_timeout_s,
            )
        except (OSError, ValueError) as exc:
            logger.debug("{} connection ended: {}", self.name, exc)
        finally:
            with self._lock:
                self._alive = False
            self._outbox.put(_STOP)
            self.abort()  # wakes a writer blocked on the socket
            self.sock.close()
        self._connection_lost()

    def _write(self) -> None:
        """Send what is queued, in order; ping when idle and fail dials that got no answer."""
        tick = self.timeouts.tick()
        ping = {"op": "ping", "req": 0}  # answered like any request; the answer is ignored
        while True:
            try:
                item = self._outbox.get(timeout=tick)
            except queue.Empty:
                item = ping if self.timeouts.keepalive_interval_s else None
            self._fail_unanswered_dials()
            if item is _STOP:
                return
            if item is None:
                continue
            try:
                if item is _SHUT_WRITE:
                    self.sock.shutdown(socket.SHUT_WR)
                else:
                    send_line(self.sock, item)
            except OSError as exc:  # the server is gone or stopped reading: drop it all
                logger.debug("{}: a write failed ({}); dropping the connection", self.name, exc)
                self.abort()
                return

    def _fail_unanswered_dials(self) -> None:
        if self.timeouts.dial_s is None:
            return
        now = time.monotonic()
        with self._lock:
            late = [link_id for link_id, deadline in self._dialing.items() if deadline <= now]
            links = [self._links.pop(link_id) for link_id in late if link_id in self._links]
            for link_id in late:
                del self._dialing[link_id]
        for link in links:
            self._outbox.put({"op": "close", "link": link.link_id, "logout": False})
            detail = f"{self.name} did not answer the dial within {self.timeouts.dial_s:g} s"
            link.report(Closed(link.generation, CloseReason.DIAL_FAILED, detail))

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "reply" in message:
            with self._lock:
                waiting = self._replies.get(int(message["reply"]))
            if waiting is not None:
                waiting[1].append(message)
                waiting[0].set()
            return
        event = decode_event(message)
        link_id = int(message["link"])
        with self._lock:
            self._dialing.pop(link_id, None)  # answered
            link = self._links.get(link_id)
            if link is not None and isinstance(event, Closed):
                self._links.pop(link_id, None)
        if link is None:
            return
        if isinstance(event, Closed):
            link.report(event)
            if self._on_link_closed is not None:
                try:
                    self._on_link_closed(self)
                except Exception:
                    logger.exception("{}: handling a closed link failed", self.name)
        else:
            link.deliver(event)

    def _connection_lost(self) -> None:
        with self._lock:
            links, self._links = list(self._links.values()), {}
            replies = list(self._replies.values())
        detail = ""
        if links or replies:
            try:
                detail = self._describe_loss()
            except Exception:
                logger.exception("{}: describing the lost connection failed", self.name)
                detail = f"{self.name} connection lost"
        for done, box in replies:
            box.append({"ok": False, "error": detail})
            done.set()
        reason = CloseReason.NETWORK
        if self._silent:
            reason = CloseReason.KEEPALIVE_TIMEOUT
            detail = f"{detail} (nothing received for {self.timeouts.keepalive_timeout_s:g} s)"
        for link in links:
            link.report(Closed(link.generation, reason, detail))
        if self._on_lost is not None:
            try:
                self._on_lost(self)
            except Exception:
                logger.exception("{}: handling the lost connection failed", self.name)
