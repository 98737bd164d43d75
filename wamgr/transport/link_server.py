"""The server side of :mod:`wamgr.transport.remote`: links of a Transport, driven by lines.

A :class:`LinkSession` serves one connection (one client process): it builds links on its
Transport when asked, sends their events back through a queue and a writer thread (so a
client that stops reading never stalls the links), and runs requests that may wait on the
network (``send``, ``pair_code``) on a few worker threads, so one slow send never holds up
the other links. When the connection ends, every link it opened is closed, as WhatsApp
closes a socket whose TCP connection dropped.

Used by ``wamgr sim`` (one session per TCP connection) and by neonize host processes (one
session over the socket pair to the parent). A ``ping`` is answered at once: it is how a
client's keep-alive tells a live server from a silent one.
"""

from __future__ import annotations

import base64
import json
import queue
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from loguru import logger

from wamgr.transport.base import Closed, Link, LinkEvent, Transport
from wamgr.transport.outgoing import from_payload
from wamgr.transport.wire import encode_event, send_line

#: An extra request a server answers: message in, reply fields out.
ExtraOp = Callable[[dict[str, Any]], dict[str, Any]]

#: Threads per session for requests that may wait on the network.
REQUEST_WORKERS = 8


class LinkSession:
    """Serves the links of one client connection on ``transport``."""

    def __init__(
        self,
        sock: socket.socket,
        transport: Transport,
        name: str = "link-server",
        extra_ops: dict[str, ExtraOp] | None = None,
    ):
        self.sock = sock
        self.transport = transport
        self.name = name
        self.links: dict[int, Link] = {}
        self._extra_ops = extra_ops or {}
        self._outbox: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self._writer = threading.Thread(
            target=self._write, name=f"wamgr-{name}-writer", daemon=True
        )
        self._workers = ThreadPoolExecutor(REQUEST_WORKERS, thread_name_prefix=f"wamgr-{name}-call")

    def serve(self, lines: Any = None) -> None:
        """Read requests until the client hangs up; then close every link of the session.

        ``lines`` is an open binary reader on the socket (socketserver gives one); by
        default one is made here.
        """
        self._writer.start()
        try:
            if lines is None:
                with self.sock.makefile("rb") as own:
                    self._read(own)
            else:
                self._read(lines)
        finally:
            self.finish()

    def finish(self) -> None:
        """Close every link (no logout) and stop the writer; called when the client is gone."""
        for link in list(self.links.values()):
            try:
                link.close(do_logout=False)  # the process is gone: so are its sockets
            except Exception:
                logger.exception("{}: closing a link failed", self.name)
        self._workers.shutdown(wait=False, cancel_futures=True)
        self._outbox.put(None)
        self._writer.join(2.0)

    def deliver(self, link_id: int, event: LinkEvent) -> None:
        """Queue ``event`` of link ``link_id`` for the client."""
        if isinstance(event, Closed):
            self.links.pop(link_id, None)  # nothing follows a Closed
        self._outbox.put(encode_event(link_id, event))

    # --- requests -----------------------------------------------------------------------

    def _read(self, lines: Any) -> None:
        for raw in lines:
            try:
                message = json.loads(raw)
            except json.JSONDecodeError:
                logger.warning(  # the line may carry message text: its size only
                    "{}: dropped a line of {} bytes that is not JSON", self.name, len(raw)
                )
                continue
            try:
                self._dispatch(message)
            except Exception as exc:
                logger.exception("{}: {} failed", self.name, message.get("op"))
                self._reply(message, ok=False, error=repr(exc))

    def _dispatch(self, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "open":
            link_id = int(message["link"])

            def deliver(event: LinkEvent, link_id: int = link_id) -> None:
                self.deliver(link_id, event)

            link = self.transport.create_link(
                message["tenant"],
                message.get("jid"),
                int(message["generation"]),
                deliver,
                proxy=message.get("proxy"),
            )
            self.links[link_id] = link
            link.open()
        elif op == "close":
            link = self.links.get(int(message["link"]))
            if link is not None:
                link.close(bool(message.get("logout")))
        elif op in ("send", "pair_code", "send_out", "download"):
            self._workers.submit(self._call, message)
        elif op == "clear_auth":
            self.transport.clear_auth(message.get("tenant", ""), message.get("jid"))
        elif op == "ping":  # the client's keep-alive: any answer shows we are alive
            self._reply(message, ok=True)
        elif op in self._extra_ops:
            self._reply(message, ok=True, **self._extra_ops[op](message))
        else:
            raise ValueError(f"unknown op {op!r}")

    def _call(self, message: dict[str, Any]) -> None:
        """A request that may wait on the network, on a worker thread."""
        link = self.links.get(int(message["link"]))
        try:
            if link is None:
                raise LookupError("unknown link")
            if message["op"] == "send":
                self._reply(
                    message, ok=True, message_id=link.send_text(message["to"], message["text"])
                )
            elif message["op"] == "send_out":
                outgoing = from_payload(message["kind"], message["payload"])
                self._reply(message, ok=True, message_id=link.send(outgoing))
            elif message["op"] == "download":
                data, mime = link.download_media(message["message_id"])
                self._reply(message, ok=True, data_b64=base64.b64encode(data).decode(), mime=mime)
            else:
                self._reply(message, ok=True, code=link.request_pair_code(message["phone"]))
        except Exception as exc:
            self._reply(message, ok=False, error=str(exc) or type(exc).__name__)

    def _reply(self, message: dict[str, Any], **fields: Any) -> None:
        if "req" in message:
            self._outbox.put({"reply": message["req"], **fields})

    def _write(self) -> None:
        while True:
            message = self._outbox.get()
            if message is None:
                return
            try:
                send_line(self.sock, message)
            except OSError:
                return  # the client is gone; serve() ends and closes the links
