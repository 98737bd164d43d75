"""``wamgr sim``: the simulated WhatsApp served over TCP, so several processes share one.

Each client connection is one wamgr process. Its links live on the server's
:class:`SimWhatsApp`; their events go back over the connection through a per-connection
queue and writer thread, so a client that stops reading (a paused process) never stalls the
simulator. When a connection ends (the process died), its sockets close, as WhatsApp's do
when a TCP connection drops.
"""

from __future__ import annotations

import json
import queue
import socket
import socketserver
import threading
from typing import Any

from loguru import logger

from wamgr.transport.sim import SimLink, SimNotConnected, SimWhatsApp
from wamgr.transport.sim_wire import encode_event, send_line


class _Connection(socketserver.StreamRequestHandler):
    """One client process: its links, and a writer thread for what goes back."""

    server: _Server

    def setup(self) -> None:
        super().setup()
        self.links: dict[int, SimLink] = {}
        self.outbox: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self.writer = threading.Thread(target=self._write, name="wamgr-sim-writer", daemon=True)
        self.writer.start()

    def handle(self) -> None:
        sim = self.server.sim
        for raw in self.rfile:
            try:
                message = json.loads(raw)
            except json.JSONDecodeError:
                logger.warning("sim server: dropped a line that is not JSON: {!r}", raw[:80])
                continue
            try:
                self._dispatch(sim, message)
            except Exception as exc:
                logger.exception("sim server: {} failed", message.get("op"))
                if "req" in message:
                    self.outbox.put({"reply": message["req"], "ok": False, "error": repr(exc)})

    def finish(self) -> None:
        for link in list(self.links.values()):
            link.close(do_logout=False)  # the process is gone: so are its sockets
        self.outbox.put(None)
        self.writer.join(2.0)
        super().finish()

    def _dispatch(self, sim: SimWhatsApp, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "open":
            link_id = int(message["link"])

            def deliver(event: Any, link_id: int = link_id) -> None:
                self.outbox.put(encode_event(link_id, event))

            link = sim.create_link(
                message["tenant"], message.get("jid"), int(message["generation"]), deliver
            )
            self.links[link_id] = link
            link.open()
        elif op == "close":
            link = self.links.get(int(message["link"]))
            if link is not None:
                link.close(bool(message.get("logout")))
        elif op == "send":
            link = self.links.get(int(message["link"]))
            try:
                if link is None:
                    raise SimNotConnected("unknown link")
                message_id = link.send_text(message["to"], message["text"])
                self.outbox.put({"reply": message["req"], "ok": True, "message_id": message_id})
            except SimNotConnected as exc:
                self.outbox.put({"reply": message["req"], "ok": False, "error": str(exc)})
        elif op == "clear_auth":
            sim.clear_auth(message.get("tenant", ""), message.get("jid"))
        elif op == "stats":
            stats: dict[str, Any] = dict(sim.stats())
            if message.get("per_account"):
                stats["per_account"] = {
                    jid: {
                        "max_concurrent_sockets": sim.max_concurrent_sockets(jid),
                        "collisions": sim.collisions(jid),
                    }
                    for jid in sim.accounts()
                }
            self.outbox.put({"reply": message["req"], "ok": True, "stats": stats})
        else:
            raise ValueError(f"unknown op {op!r}")

    def _write(self) -> None:
        while True:
            message = self.outbox.get()
            if message is None:
                return
            try:
                send_line(self.connection, message)
            except OSError:
                return  # the client is gone; finish() closes its links


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sim: SimWhatsApp):
        self.sim = sim
        super().__init__(address, _Connection)


class SimServer:
    """A :class:`SimWhatsApp` reachable at ``sim://HOST:PORT``; loopback only by default."""

    def __init__(self, sim: SimWhatsApp, host: str = "127.0.0.1", port: int = 0):
        self.sim = sim
        self._server = _Server((host, port), sim)
        self.host, self.port = self._server.server_address[:2]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="wamgr-sim-server", daemon=True
        )

    @property
    def url(self) -> str:
        """``sim://HOST:PORT`` for ``Config(transport=...)``."""
        return f"sim://{self.host}:{self.port}"

    def start(self) -> SimServer:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting and serving."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5.0)


def fetch_stats(host: str, port: int, per_account: bool = False, timeout: float = 5.0) -> dict:
    """Ask a running simulator for its statistics (``wamgr sim-stats``)."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        send_line(sock, {"op": "stats", "req": 1, "per_account": per_account})
        reply = json.loads(sock.makefile("rb").readline())
    if not reply.get("ok"):
        raise RuntimeError(f"the simulator refused: {reply.get('error')}")
    return reply["stats"]
