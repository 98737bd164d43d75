"""The ``sim://HOST:PORT`` transport: links whose sockets live in a ``wamgr sim`` server.

One TCP connection per process carries every link (a :class:`~wamgr.transport.remote.
LinkChannel`). If the connection drops, every open link reports ``Closed(NETWORK)`` and
later dials fail until the server answers again, as real WhatsApp links do when the
network goes. Like WhatsApp's own sockets, the connection has a dial timeout and a
keep-alive (:data:`SIM_TIMEOUTS`): a server that stops answering without hanging up (a
partition, a paused process) is noticed within the keep-alive timeout, and its links report
``Closed(KEEPALIVE_TIMEOUT)`` so the supervisor reconnects them.
"""

from __future__ import annotations

import socket
import threading

from wamgr.transport.base import EventCallback, Link
from wamgr.transport.remote import REQUEST_TIMEOUT_S, ChannelTimeouts, LinkChannel, RemoteLink

__all__ = ["REQUEST_TIMEOUT_S", "SIM_TIMEOUTS", "RemoteSimTransport", "parse_address"]

#: Seconds to set up the TCP connection to the server (the connect blocks its caller).
CONNECT_TIMEOUT_S = 5.0

#: A dial (a link's ``open``) answered within 20 s; a ping after 5 s of quiet; the connection
#: dropped after 15 s without a byte from the server (whatsmeow: a 20 s dial timeout and a
#: keep-alive of 20-30 s; the simulator answers at once, so shorter bounds cost nothing).
SIM_TIMEOUTS = ChannelTimeouts(dial_s=20.0, keepalive_interval_s=5.0, keepalive_timeout_s=15.0)


def parse_address(url: str) -> tuple[str, int]:
    """``(host, port)`` of ``sim://HOST:PORT``; raises ValueError with what is expected."""
    if not url.startswith("sim://"):
        raise ValueError(f"not a simulator address: {url!r} (expected sim://HOST:PORT)")
    host, _, port = url.removeprefix("sim://").rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"not a simulator address: {url!r} (expected sim://HOST:PORT)")
    return host, int(port)


class RemoteSimTransport:
    """A Transport backed by a ``wamgr sim`` server, its connection bounded by ``timeouts``."""

    def __init__(self, url: str, timeouts: ChannelTimeouts = SIM_TIMEOUTS):
        self.host, self.port = parse_address(url)
        self.timeouts = timeouts
        self._lock = threading.Lock()  # guards the channel
        self._channel: LinkChannel | None = None
        self._closed = False

    def create_link(
        self,
        tenant_id: str,
        jid: str | None,
        generation: int,
        on_event: EventCallback,
        proxy: str | None = None,
    ) -> Link:
        """A link of ``tenant_id`` on the server (dialling through ``proxy`` there)."""
        return RemoteLink(
            self._connected, tenant_id, jid, generation, on_event, "simulator unreachable", proxy
        )

    def clear_auth(self, tenant_id: str, jid: str | None) -> None:
        """Forget the device on the server."""
        if jid is not None:
            self._connected().send({"op": "clear_auth", "tenant": tenant_id, "jid": jid})

    def close(self) -> None:
        """Drop the connection; links still open report ``Closed(NETWORK)``."""
        with self._lock:
            self._closed = True
            channel, self._channel = self._channel, None
        if channel is not None:
            channel.abort()  # the reader sees the end and closes the links

    @property
    def channel(self) -> LinkChannel | None:
        """The connection to the server, if one is up (tests cut it to play a dead process)."""
        return self._channel

    def _connected(self, _link: RemoteLink | None = None) -> LinkChannel:
        with self._lock:
            if self._closed:
                raise OSError("the simulator transport is closed")
            if self._channel is None or not self._channel.alive:
                sock = socket.create_connection((self.host, self.port), CONNECT_TIMEOUT_S)
                self._channel = LinkChannel(
                    sock, "sim", lambda: "simulator connection lost", timeouts=self.timeouts
                )
            return self._channel
