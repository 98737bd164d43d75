"""The connection pool, the bounds on every session, and the versioned migrations.

:class:`Database` owns one ``psycopg_pool.ConnectionPool``. Every statement wamgr runs goes
through :meth:`Database.connection`, which turns a lost or unreachable server into
:class:`~wamgr.errors.DatabaseUnavailable` so callers handle one error.

Every session is opened with :class:`SessionLimits`: no statement runs, waits for a lock or
sits idle inside a transaction longer than a bound chosen below the lease fence, so a stalled
database or a paused process never holds a lease row (or a tenant's actor) past it. The
"Database sessions" section of docs/operations.md explains each setting.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path

import psycopg
import psycopg_pool
from loguru import logger
from psycopg.conninfo import conninfo_to_dict

from wamgr.errors import DatabaseUnavailable

#: Key of the advisory lock that serialises migrations between processes.
_MIGRATION_LOCK = 0x77616D67  # "wamg"

#: Errors that mean the database did not (or could no longer) do the work: every caller
#: handles them as DatabaseUnavailable.
_UNAVAILABLE = (psycopg.OperationalError, psycopg.errors.IdleInTransactionSessionTimeout)

#: TCP keep-alive of every session (ignored on Unix sockets): first probe after this many
#: idle seconds, then one per interval; the connection is dropped after the count of misses.
KEEPALIVE_IDLE_S = 5
KEEPALIVE_INTERVAL_S = 2
KEEPALIVE_COUNT = 3

_MIGRATION_NAME = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")


def available_migrations() -> list[tuple[int, str, str]]:
    """``(version, name, sql)`` of every migration shipped with wamgr, oldest first."""
    found = []
    for entry in resources.files("wamgr.store.migrations").iterdir():
        match = _MIGRATION_NAME.fullmatch(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """The bounds set on every wamgr session, in seconds (see docs/operations.md).

    ``statement_timeout_s``: the server cancels a statement that runs longer.
    ``lock_timeout_s``: a statement waiting this long for a row or table lock gives up
    (an acquire never queues behind a lease row that a stalled session holds).
    ``idle_in_transaction_s``: the server ends a session that sat this long inside a
    transaction without sending anything: a paused process frees its locks.
    ``tcp_user_timeout_s``: sent data not acknowledged this long drops the connection (a
    partition), whatever the server's state; it bounds a session's wait on the network.
    """

    statement_timeout_s: float = 10.0
    lock_timeout_s: float = 5.0
    idle_in_transaction_s: float = 10.0
    tcp_user_timeout_s: float = 10.0

    @classmethod
    def below_fence(
        cls, renew_interval_s: float, renew_deadline_s: float, call_timeout_s: float
    ) -> SessionLimits:
        """Bounds for an instance with these lease settings.

        A statement may take as long as a renewal can and still be in time: the time
        between two renewals and the deadline (``renew_deadline - renew_interval``), and no
        longer than a caller waits (``call_timeout``). A lock wait gets half of that; a
        session idle inside a transaction (only a paused process is) is ended after the
        same bound, which is below the TTL, so a takeover is not held up past it.
        """
        bound = min(call_timeout_s, renew_deadline_s - renew_interval_s)
        return cls(
            statement_timeout_s=bound,
            lock_timeout_s=bound / 2,
            idle_in_transaction_s=bound,
            tcp_user_timeout_s=bound,
        )

    def connect_kwargs(self, url: str) -> dict[str, object]:
        """Connection parameters carrying these bounds; ``url``'s own ``options`` come last,
        so a setting given there (by an operator who knows better) wins."""
        server = (
            f"-c statement_timeout={_ms(self.statement_timeout_s)}"
            f" -c lock_timeout={_ms(self.lock_timeout_s)}"
            f" -c idle_in_transaction_session_timeout={_ms(self.idle_in_transaction_s)}"
        )
        own = conninfo_to_dict(url).get("options")
        return {
            "autocommit": True,
            "options": f"{server} {own}" if own else server,
            "keepalives": 1,
            "keepalives_idle": KEEPALIVE_IDLE_S,
            "keepalives_interval": KEEPALIVE_INTERVAL_S,
            "keepalives_count": KEEPALIVE_COUNT,
            "tcp_user_timeout": _ms(self.tcp_user_timeout_s),
        }


def _ms(seconds: float) -> int:
    """Whole milliseconds, at least 1 (0 would mean "no limit" to PostgreSQL)."""
    return max(1, math.ceil(seconds * 1000))


class Database:
    """A pool of connections to wamgr's PostgreSQL database, each bounded by ``limits``."""

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        timeout_s: float = 10.0,
        name: str = "wamgr-db",
        limits: SessionLimits | None = None,
    ):
        self.url = url
        self.timeout_s = timeout_s
        self.limits = limits or SessionLimits()
        self._pool = psycopg_pool.ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout_s,
            open=False,
            name=name,
            kwargs=self.limits.connect_kwargs(url),
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
        except _UNAVAILABLE as exc:  # lost connection, statement or lock timeout, session ended
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
            except psycopg_pool.PoolClosed as exc:
                raise DatabaseUnavailable("the connection pool is closed") from exc
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
            # A migration may rewrite a big table, and another process may be applying them:
            # this one transaction is exempt from the session bounds.
            conn.execute("SET LOCAL statement_timeout = 0")
            conn.execute("SET LOCAL lock_timeout = 0")
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
    database_url: str | None,
    home: Path,
    *,
    pool_size: int = 4,
    timeout_s: float = 10.0,
    limits: SessionLimits | None = None,
) -> tuple[Database, Callable[[], None]]:
    """Open (and migrate) wamgr's database; returns it and the function that closes it.

    With no ``database_url`` the embedded server in ``home`` is started or joined, and the
    close function leaves it again. ``limits`` bound every session (default: SessionLimits()).
    """
    from wamgr.store import embedded

    url = database_url or embedded.acquire(home)
    db = Database(url, max_size=pool_size, timeout_s=timeout_s, limits=limits)
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
