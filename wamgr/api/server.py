"""Serving the HTTP API: uvicorn on a named thread, on a socket bound before anything starts.

``wamgr serve`` does this, refusing to listen beyond loopback without an API key of at least
16 characters:

    check_binding(host, api_key)                  # no key or a short one: loopback only
    server = HttpServer(app, "127.0.0.1", 8080)   # binds now: a busy port fails here
    server.start()
    ...
    server.stop(timeout=5)
"""

import ipaddress
import socket
import threading

import uvicorn
from fastapi import FastAPI
from loguru import logger

from wamgr.errors import ConfigError

#: Seconds the server gives requests under way to finish when it stops.
GRACEFUL_STOP_S = 3.0
#: The shortest API key accepted when listening beyond loopback.
MIN_PUBLIC_KEY_CHARS = 16


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name) means this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def check_binding(host: str, api_key: str | None) -> None:
    """Refuse to listen beyond loopback without an API key, or with one shorter than
    :data:`MIN_PUBLIC_KEY_CHARS` characters (ConfigError)."""
    if is_loopback(host):
        return
    where = host or "every interface (--host / WAMGR_HTTP_HOST is empty)"
    if api_key is None:
        raise ConfigError(
            f"refusing to listen on {where} without an API key: anyone who can reach it could "
            "send messages and log devices out. Set WAMGR_API_KEY (api_key in the config "
            "file), or listen on 127.0.0.1"
        )
    if len(api_key) < MIN_PUBLIC_KEY_CHARS:
        raise ConfigError(
            f"api_key is {len(api_key)} characters; listening on {where} needs at least "
            f"{MIN_PUBLIC_KEY_CHARS}, as anyone who can reach it may guess. Make one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )


class HttpServer:
    """uvicorn on a named thread; the socket is bound at construction (a busy port fails
    there, before anything starts) and listens at once, so requests queue until it runs."""

    def __init__(self, app: FastAPI, host: str, port: int, *, name: str = "wamgr-http"):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            self._sock = socket.create_server((host, port), family=family, backlog=1024)
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another "
                "--port (WAMGR_HTTP_PORT) or --host"
            ) from exc
        self.host, self.port = self._sock.getsockname()[:2]
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="off",
            ws="none",
            http="h11",
            loop="asyncio",
            timeout_graceful_shutdown=int(GRACEFUL_STOP_S),
        )
        self._server = uvicorn.Server(config)
        self._app = app
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def url(self) -> str:
        """``http://host:port`` of the bound socket."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> "HttpServer":
        """Serve on the thread."""
        self._thread.start()
        return self

    def stop(self, timeout: float = GRACEFUL_STOP_S + 2.0) -> None:
        """Stop taking requests, let those under way finish, end the thread."""
        dashboard = getattr(self._app.state, "dashboard", None)
        if dashboard is not None:  # its live streams never finish by themselves: end them
            dashboard.live.close()
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(1.0)
        self._sock.close()

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._sock])
        except Exception:
            logger.exception("the HTTP server failed")
