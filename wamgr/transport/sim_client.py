"""The ``sim://HOST:PORT`` transport: links whose sockets live in a ``wamgr sim`` server.

One TCP connection per process carries every link; a reader thread hands events to the
links' callbacks. If the connection drops, every open link reports ``Closed(NETWORK)``
and later dials fail until the server answers again, as real WhatsApp links do when the
network goes.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import threading
from typing import Any

from loguru import logger

from wamgr.transport.base import Closed, CloseReason, EventCallback, Link
from wamgr.transport.sim_wire import decode_event, parse_address, send_line

#: Seconds to wait for the server to answer a request (send, stats).
REQUEST_TIMEOUT_S = 10.0


class RemoteSimLink:
    """A link whose socket lives in the simulator server."""

    def __init__(
        self,
        transport: RemoteSimTransport,
        link_id: int,
        tenant_id: str,
        jid: str | None,
        generation: int,
        on_event: EventCallback,
    ):
        self.generation = generation
        self._transport = transport
        self._id = link_id
        self._tenant_id = tenant_id
        self._jid = jid
        self.on_event = on_event
        self.closed = False

    def open(self) -> None:
        """Ask the server to dial; a connection failure reports ``Closed(DIAL_FAILED)``."""
        try:
            self._transport.request(
                {
                    "op": "open",
                    "link": self._id,
                    "tenant": self._tenant_id,
                    "jid": self._jid,
                    "generation": self.generation,
                },
                link=self,
            )
        except OSError as exc:
            self._transport.forget(self._id)
            self.report(
                Closed(self.generation, CloseReason.DIAL_FAILED, f"simulator unreachable: {exc}")
            )

    def close(self, do_logout: bool) -> None:
        """Ask the server to close (and maybe log out); a dead connection closes at once."""
        if self.closed:
            return
        try:
            self._transport.request({"op": "close", "link": self._id, "logout": do_logout})
        except OSError:
            self._transport.forget(self._id)
            self.report(Closed(self.generation, CloseReason.REQUESTED, "connection lost"))

    def send_text(self, to: str, text: str) -> str:
        """Send through the server; raises RuntimeError if the socket is not connected."""
        reply = self._transport.ask({"op": "send", "link": self._id, "to": to, "text": text})
        if not reply.get("ok"):
            raise RuntimeError(f"send failed: {reply.get('error')}")
        return str(reply["message_id"])

    def report(self, event: Closed) -> None:
        """Report the one ``Closed`` of this link (no-op if already closed)."""
        if not self.closed:
            self.closed = True
            self.on_event(event)


class RemoteSimTransport:
    """A Transport backed by a ``wamgr sim`` server."""

    def __init__(self, url: str):
        self.host, self.port = parse_address(url)
        self._lock = threading.Lock()  # guards the socket, links and replies
        self._sock: socket.socket | None = None
        self._links: dict[int, RemoteSimLink] = {}
        self._replies: dict[int, tuple[threading.Event, list[dict[str, Any]]]] = {}
        self._ids = itertools.count(1)
        self._closed = False

    def create_link(
        self, tenant_id: str, jid: str | None, generation: int, on_event: EventCallback
    ) -> Link:
        """A link of ``tenant_id`` on the server."""
        return RemoteSimLink(self, next(self._ids), tenant_id, jid, generation, on_event)

    def clear_auth(self, tenant_id: str, jid: str | None) -> None:
        """Forget the device on the server."""
        if jid is not None:
            self.request({"op": "clear_auth", "tenant": tenant_id, "jid": jid})

    def close(self) -> None:
        """Drop the connection; links still open report ``Closed(NETWORK)``."""
        with self._lock:
            self._closed = True
            sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # the reader thread sees EOF and closes it

    # --- plumbing -----------------------------------------------------------------------

    def request(self, message: dict[str, Any], link: RemoteSimLink | None = None) -> None:
        """Send ``message`` (registering ``link`` for its events first); raises OSError."""
        with self._lock:
            sock = self._connected()
            if link is not None:
                self._links[int(message["link"])] = link
            send_line(sock, message)

    def ask(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send a request and wait (bounded) for its reply."""
        req = next(self._ids)
        done = threading.Event()
        box: list[dict[str, Any]] = []
        with self._lock:
            self._replies[req] = (done, box)
        try:
            self.request({**message, "req": req})
            if not done.wait(REQUEST_TIMEOUT_S):
                raise TimeoutError(f"the simulator did not answer within {REQUEST_TIMEOUT_S:g} s")
            return box[0]
        finally:
            with self._lock:
                self._replies.pop(req, None)

    def forget(self, link_id: int) -> None:
        """Stop routing events to ``link_id``."""
        with self._lock:
            self._links.pop(link_id, None)

    def _connected(self) -> socket.socket:
        if self._closed:
            raise OSError("the simulator transport is closed")
        if self._sock is None:
            sock = socket.create_connection((self.host, self.port), timeout=5.0)
            sock.settimeout(None)
            self._sock = sock
            threading.Thread(
                target=self._read, args=(sock,), name="wamgr-sim-reader", daemon=True
            ).start()
        return self._sock

    def _read(self, sock: socket.socket) -> None:
        try:
            with sock.makefile("rb") as lines:
                for raw in lines:
                    self._dispatch(json.loads(raw))
        except (OSError, ValueError) as exc:
            logger.debug("simulator connection ended: {}", exc)
        finally:
            sock.close()
        self._connection_lost(sock)

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "reply" in message:
            with self._lock:
                waiting = self._replies.get(int(message["reply"]))
            if waiting is not None:
                waiting[1].append(message)
                waiting[0].set()
            return
        event = decode_event(message)
        with self._lock:
            link = self._links.get(int(message["link"]))
            if link is not None and isinstance(event, Closed):
                self._links.pop(int(message["link"]), None)
        if link is None:
            return
        if isinstance(event, Closed):
            link.report(event)
        else:
            link.on_event(event)

    def _connection_lost(self, sock: socket.socket) -> None:
        with self._lock:
            if self._sock is sock:
                self._sock = None
            links, self._links = list(self._links.values()), {}
            replies = list(self._replies.values())
        for done, box in replies:
            box.append({"ok": False, "error": "simulator connection lost"})
            done.set()
        for link in links:
            link.report(Closed(link.generation, CloseReason.NETWORK, "simulator connection lost"))
