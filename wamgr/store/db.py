"""The connection pool and the versioned migrations.

:class:`Database` owns one ``psycopg_pool.ConnectionPool``. Every statement wamgr runs goes
through :meth:`Database.connection`, which turns a lost or unreachable server into
:class:`~wamgr.errors.DatabaseUnavailable` so callers handle one error.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from importlib import resources
from pathlib import Path

import psycopg
import psycopg_pool
from loguru import logger

from wamgr.errors import DatabaseUnavailable

#: Key of the advisory lock that serialises migrations between processes.
_MIGRATION_LOCK = 0x77616D67  # "wamg"

_MIGRATION_NAME = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")


def available_migrations() -> list[tuple[int, str, str]]:
    """``(version, name, sql)`` of every migration shipped with wamgr, oldest first."""
    found = []
    for entry in resources.files("wamgr.store.migrations").iterdir():
        match = _MIGRATION_NAME.fullmatch(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


class Database:
    """A pool of connections to wamgr's PostgreSQL database."""

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        timeout_s: float = 10.0,
        name: str = "wamgr-db",
    ):
        self.url = url
        self.timeout_s = timeout_s
        self._pool = psycopg_pool.ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout_s,
            open=False,
            name=name,
            kwargs={"autocommit": True},
        )
        self._max_size = max_size

    def open(self) -> None:
        """Open the pool and wait until it has a working connection, or raise."""
        try:
            self._pool.open(wait=True, timeout=self.timeout_s)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            self._pool.close()
            raise DatabaseUnavailable(
                f"cannot connect within {self.timeout_s:g} s ({exc})"
            ) from exc

    def close(self) -> None:
        """Close every connection and end the pool's threads."""
        self._pool.close(timeout=5.0)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A working connection in autocommit mode; use ``conn.transaction()`` for one.

        Raises DatabaseUnavailable when none can be had within the pool timeout.
        """
        conn = self._checked_connection(time.monotonic() + self.timeout_s)
        try:
            yield conn
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(str(exc).strip()) from exc
        finally:
            self._pool.putconn(conn)

    def _checked_connection(self, deadline: float) -> psycopg.Connection:
        """A pooled connection that answered a ping.

        A connection that fails the ping goes back to the pool, which drops it and opens a
        replacement, and the next one is tried at once. (psycopg_pool's own ``check`` sleeps
        1, 2, 4 … s after each dead connection: after every connection was cut, a pool full
        of dead ones would stall for longer than a lease deadline.)
        """
        for _ in range(self._max_size + 1):
            try:
                conn = self._pool.getconn(timeout=max(0.0, deadline - time.monotonic()))
            except psycopg_pool.PoolTimeout as exc:
                raise DatabaseUnavailable(f"no connection within {self.timeout_s:g} s") from exc
            try:
                psycopg_pool.ConnectionPool.check_connection(conn)
            except psycopg.Error:
                self._pool.putconn(conn)
                continue
            return conn
        raise DatabaseUnavailable("every pooled connection was broken; the server may be down")

    def ping(self) -> None:
        """Run ``SELECT 1``; raise DatabaseUnavailable if it fails."""
        with self.connection() as conn:
            conn.execute("SELECT 1")

    def migrate(self) -> list[str]:
        """Apply every migration not yet applied, in order; returns the names applied.

        Safe when several processes start at once: an advisory lock lets one apply them.
        """
        applied: list[str] = []
        with self.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS wamgr_schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM wamgr_schema_migrations")}
            for version, name, sql in available_migrations():
                if version in done:
                    continue
                conn.execute(sql)  # type: ignore[call-overload]
                conn.execute(
                    "INSERT INTO wamgr_schema_migrations (version, name) VALUES (%s, %s)",
                    (version, name),
                )
                applied.append(name)
        for name in applied:
            logger.info("applied migration {}", name)
        return applied

    def applied_migrations(self) -> list[tuple[int, str, datetime]]:
        """``(version, name, applied_at)`` of every migration applied to this database,
        oldest first. Call it after :meth:`migrate`, which creates the table."""
        with self.connection() as conn:
            rows = conn.execute(
                "SELECT version, name, applied_at FROM wamgr_schema_migrations ORDER BY version"
            ).fetchall()
        return [(version, name, applied_at) for version, name, applied_at in rows]


def open_database(
    database_url: str | None, home: Path, *, pool_size: int = 4, timeout_s: float = 10.0
) -> tuple[Database, Callable[[], None]]:
    """Open (and migrate) wamgr's database; returns it and the function that closes it.

    With no ``database_url`` the embedded server in ``home`` is started or joined, and the
    close function leaves it again.
    """
    from wamgr.store import embedded

    url = database_url or embedded.acquire(home)
    db = Database(url, max_size=pool_size, timeout_s=timeout_s)
    try:
        db.open()
        db.migrate()
    except BaseException:
        if database_url is None:
            embedded.release(home)
        raise

    def close() -> None:
        db.close()
        if database_url is None:
            embedded.release(home)

    return db, close
