"""``wamgr sim``: the simulated WhatsApp served over TCP, so several processes share one.

Each client connection is one wamgr process, served by a
:class:`~wamgr.transport.link_server.LinkSession` on the server's :class:`SimWhatsApp`. When a
connection ends (the process died), its sockets close, as WhatsApp's do when a TCP
connection drops. Besides the link requests it answers ``stats`` (:func:`fetch_stats`) and
``inbound`` (:func:`send_inbound`: a customer writes to an account), for tests and benches
that drive the simulator from outside.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from typing import Any

from wamgr.transport.link_server import LinkSession
from wamgr.transport.sim import SimNotConnected, SimWhatsApp
from wamgr.transport.wire import send_line


class _Connection(socketserver.StreamRequestHandler):
    """One client process."""

    server: _Server

    def handle(self) -> None:
        sim = self.server.sim
        session = LinkSession(
            self.connection,
            sim,
            name="sim",
            extra_ops={"stats": lambda m: _stats(sim, m), "inbound": lambda m: _inbound(sim, m)},
        )
        session.serve(self.rfile)


def _stats(sim: SimWhatsApp, message: dict[str, Any]) -> dict[str, Any]:
    stats: dict[str, Any] = dict(sim.stats())
    if message.get("per_account"):
        stats["per_account"] = {
            jid: {
                "max_concurrent_sockets": sim.max_concurrent_sockets(jid),
                "collisions": sim.collisions(jid),
            }
            for jid in sim.accounts()
        }
    return {"stats": stats}


def _inbound(sim: SimWhatsApp, message: dict[str, Any]) -> dict[str, Any]:
    try:
        message_id = sim.inbound(message["jid"], message["sender"], message["text"])
    except SimNotConnected:
        return {"delivered": False}
    return {"delivered": True, "message_id": message_id}


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


def send_inbound(
    host: str, port: int, jid: str, sender: str, text: str, timeout: float = 5.0
) -> bool:
    """Have ``sender`` write ``text`` to the account ``jid`` on a running simulator; returns
    whether a socket of the account was open to get it."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        request = {"op": "inbound", "req": 1, "jid": jid, "sender": sender, "text": text}
        send_line(sock, request)
        reply = json.loads(sock.makefile("rb").readline())
    if not reply.get("ok"):
        raise RuntimeError(f"the simulator refused: {reply.get('error')}")
    return bool(reply["delivered"])
