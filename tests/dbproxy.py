"""A TCP proxy a test can freeze: a network partition without a reset, on demand.

:class:`FreezableProxy` listens on 127.0.0.1 and forwards every connection to an upstream
server (PostgreSQL over TCP or its Unix socket, or a ``wamgr sim`` server). ``freeze()`` stops
forwarding in both directions without closing anything: bytes already sent wait in the proxy,
both ends keep their sockets open and nobody gets an error, as when packets are dropped
between an instance and its database. ``freeze_replies()`` holds only what the server sends
back (a statement runs on time but its answer arrives late). ``thaw()`` forwards everything
held, in order; ``cut()`` closes every connection at once (a reset).
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Iterator

from psycopg.conninfo import conninfo_to_dict, make_conninfo

#: Seconds a pump waits on its socket or gate before it re-checks whether the proxy stopped.
_POLL_S = 0.1

Address = str | tuple[str, int]  # a Unix socket path, or (host, port)


def upstream_of(database_url: str) -> Address:
    """Where ``database_url`` points: its Unix socket path, or ``(host, port)``."""
    params = conninfo_to_dict(database_url)
    host = str(params.get("host") or "/tmp")
    port = int(params.get("port") or 5432)
    if host.startswith("/"):
        return f"{host}/.s.PGSQL.{port}"
    return (host, port)


class FreezableProxy:
    """Forwards connections to ``upstream``; can freeze, thaw and cut them."""

    def __init__(self, upstream: Address, name: str = "dbproxy", upstream_url: str = ""):
        self.upstream = upstream
        self.upstream_url = upstream_url
        self.name = name
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(_POLL_S)
        self.host, self.port = self._listener.getsockname()[:2]
        self._to_server = threading.Event()  # set: client -> server bytes flow
        self._to_client = threading.Event()  # set: server -> client bytes flow
        self._to_server.set()
        self._to_client.set()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, name=f"{name}-accept", daemon=True)

    @classmethod
    def for_database(cls, database_url: str) -> FreezableProxy:
        """A proxy in front of the server of ``database_url`` (see :meth:`database_url`)."""
        return cls(upstream_of(database_url), upstream_url=database_url)

    @property
    def database_url(self) -> str:
        """``upstream_url`` with host and port replaced by the proxy's."""
        return make_conninfo(self.upstream_url, host=self.host, port=str(self.port))

    @property
    def sim_url(self) -> str:
        """``sim://HOST:PORT`` of the proxy (when the upstream is a ``wamgr sim`` server)."""
        return f"sim://{self.host}:{self.port}"

    def start(self) -> FreezableProxy:
        """Accept connections in a background thread."""
        self._acceptor.start()
        return self

    def freeze(self) -> None:
        """Stop forwarding both ways; nothing is closed and nothing is lost."""
        self._to_server.clear()
        self._to_client.clear()

    def freeze_replies(self) -> None:
        """Stop forwarding what the server sends; requests still reach it."""
        self._to_client.clear()

    def thaw(self) -> None:
        """Forward again, starting with what was held."""
        self._to_server.set()
        self._to_client.set()

    @property
    def connections(self) -> int:
        """How many client connections the proxy forwards now (each one has reached it)."""
        with self._lock:
            return len(self._sockets) // 2

    @property
    def frozen(self) -> bool:
        """Whether anything is held back right now."""
        return not (self._to_server.is_set() and self._to_client.is_set())

    def cut(self) -> None:
        """Close every connection, both ends (a reset); new connections are still accepted."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def stop(self) -> None:
        """Thaw, close everything and end the threads."""
        self.thaw()
        self._stopped.set()
        self._acceptor.join(5.0)
        self._listener.close()
        self.cut()
        for thread in self._threads:
            thread.join(5.0)

    # --- threads ------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                server = self._dial()
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            server.settimeout(None)
            with self._lock:
                self._sockets += [client, server]
            for src, dst, gate, way in (
                (client, server, self._to_server, "up"),
                (server, client, self._to_client, "down"),
            ):
                thread = threading.Thread(
                    target=self._pump, args=(src, dst, gate), name=f"{self.name}-{way}", daemon=True
                )
                self._threads.append(thread)
                thread.start()

    def _dial(self) -> socket.socket:
        if isinstance(self.upstream, str):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(5.0)
            sock.connect(self.upstream)
            return sock
        return socket.create_connection(self.upstream, timeout=5.0)

    def _pump(self, src: socket.socket, dst: socket.socket, gate: threading.Event) -> None:
        """Copy ``src`` to ``dst``; while ``gate`` is clear, hold what was read."""
        while not self._stopped.is_set():
            try:
                readable, _, _ = select.select([src], [], [], _POLL_S)
                if not readable:
                    continue
                data = src.recv(65536)
            except (OSError, ValueError):  # closed by cut() or stop()
                break
            if not data:
                break
            while not gate.wait(_POLL_S):
                if self._stopped.is_set():
                    return
            try:
                dst.sendall(data)
            except OSError:
                break
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def frozen(proxy: FreezableProxy) -> Iterator[FreezableProxy]:
    """Freeze ``proxy`` for the ``with`` block; it thaws on the way out, whatever happens."""
    proxy.freeze()
    try:
        yield proxy
    finally:
        proxy.thaw()
