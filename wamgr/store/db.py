"""The connection pool, the bounds on every session, and the versioned migrations.

:class:`Database` owns one ``psycopg_pool.ConnectionPool``. Every statement wamgr runs goes
through :meth:`Database.connection`, which turns a lost or unreachable server into
:class:`~wamgr.errors.DatabaseUnavailable` so callers handle one error.

Every session is opened with :class:`SessionLimits`: no statement runs, waits for a lock or
sits idle inside a transaction longer than a bound chosen below the lease fence, so a stalled
database or a paused process never holds a lease row (or a tenant's actor) past it. The
"Database sessions" section of docs/operations.md explains each setting.

Two bounds serve a database that is gone: :meth:`Database.ping` (the health check) answers
within :data:`PING_TIMEOUT_S` whatever the server does, and, once
:meth:`Database.limit_waits_while_failing` was called (a stopping manager does), no wait for
a connection lasts longer than that limit while the database is failing, waits already under
way included.
"""

from __future__ import annotations

import math
import re
import threading
import time
import weakref
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

#: Seconds :meth:`Database.ping` waits for its answer (the health check's bound).
PING_TIMEOUT_S = 1.0
#: Seconds of one wait on the pool; a longer wait is made of several, and re-reads its bound
#: between two (see :meth:`Database.limit_waits_while_failing`).
_WAIT_SLICE_S = 0.25
#: Seconds after a statement succeeded on a connection during which the pool lends it again
#: without a ping (unless the database is failing): a connection that just worked is not
#: checked with a round trip of its own before each statement.
FRESH_S = 1.0


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
        self._failing = False
        self._failing_wait_s: float | None = None
        self._ping_lock = threading.Lock()
        self._ping: _Ping | None = None
        self._fresh_lock = threading.Lock()
        self._worked_at: weakref.WeakKeyDictionary[psycopg.Connection, float] = (
            weakref.WeakKeyDictionary()
        )  # when a statement last succeeded on each pooled connection

    @property
    def failing(self) -> bool:
        """Whether the last attempt to reach the server failed (no connection in time, or a
        statement that lost its connection); a working connection clears it."""
        return self._failing

    def limit_waits_while_failing(self, seconds: float) -> None:
        """From now on, while :attr:`failing`, wait at most ``seconds`` for a connection.

        Waits under way obey it too (they re-read their bound every fraction of a second), so
        a database that is gone costs each step of a stop that much, not the pool timeout.
        """
        self._failing_wait_s = seconds

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
        """Close every connection and end the pool's threads (waiting less for them while
        the database is failing and waits are limited)."""
        limited = self._failing and self._failing_wait_s is not None
        self._pool.close(timeout=1.0 if limited else 5.0)

    @contextmanager
    def connection(self, wait_s: float | None = None) -> Iterator[psycopg.Connection]:
        """A working connection in autocommit mode; use ``conn.transaction()`` for one.

        Raises DatabaseUnavailable when none can be had within ``wait_s`` (default: the pool
        timeout), or when a statement lost its connection or ran out of its session bounds.
        """
        conn = self._checked_connection(self.timeout_s if wait_s is None else wait_s)
        worked = False
        try:
            yield conn
            worked = True
        except _UNAVAILABLE as exc:  # lost connection, statement or lock timeout, session ended
            self._failing = True
            raise DatabaseUnavailable(str(exc).strip()) from exc
        finally:
            with self._fresh_lock:
                if worked and not conn.closed:
                    self._worked_at[conn] = time.monotonic()
                else:
                    self._worked_at.pop(conn, None)
            self._pool.putconn(conn)

    def _checked_connection(self, wait_s: float) -> psycopg.Connection:
        """A pooled connection that answered a ping (or on which a statement succeeded less
        than :data:`FRESH_S` ago, while the database is not failing), within ``wait_s`` (or
        the limit of :meth:`limit_waits_while_failing`, re-read between slices of the wait).

        A connection that fails the ping goes back to the pool, which drops it and opens a
        replacement, and the next one is tried at once. (psycopg_pool's own ``check`` sleeps
        1, 2, 4 … s after each dead connection: after every connection was cut, a pool full
        of dead ones would stall for longer than a lease deadline.)
        """
        started = time.monotonic()
        broken = 0
        while True:
            left = self._wait_bound(wait_s) - (time.monotonic() - started)
            if left <= 0:
                self._failing = True
                waited = time.monotonic() - started
                raise DatabaseUnavailable(f"no connection within {waited:.3g} s")
            try:
                conn = self._pool.getconn(timeout=min(left, _WAIT_SLICE_S))
            except psycopg_pool.PoolTimeout:
                continue
            except psycopg_pool.PoolClosed as exc:
                raise DatabaseUnavailable("the connection pool is closed") from exc
            if not self._failing and self._worked_recently(conn):
                return conn
            try:
                psycopg_pool.ConnectionPool.check_connection(conn)
            except psycopg.Error:
                self._pool.putconn(conn)
                broken += 1
                if broken > self._max_size:
                    self._failing = True
                    raise DatabaseUnavailable(
                        "every pooled connection was broken; the server may be down"
                    ) from None
                continue
            self._failing = False
            return conn

    def _worked_recently(self, conn: psycopg.Connection) -> bool:
        """Whether a statement succeeded on ``conn`` less than :data:`FRESH_S` ago."""
        with self._fresh_lock:
            worked_at = self._worked_at.get(conn)
        return worked_at is not None and time.monotonic() - worked_at < FRESH_S

    def _wait_bound(self, wait_s: float) -> float:
        """Seconds a wait for a connection may last in all, as things stand now."""
        if self._failing and self._failing_wait_s is not None:
            return min(wait_s, self._failing_wait_s)
        return wait_s

    def ping(self, timeout_s: float = PING_TIMEOUT_S) -> None:
        """Run ``SELECT 1``; raise DatabaseUnavailable unless it answered within ``timeout_s``.

        The statement runs on a helper thread, so a server that does not answer at all (a
        partition: no error, no reply) costs the caller ``timeout_s``, not a network timeout.
        One ping runs at a time: a caller that comes while one is under way waits for that
        one.
        """
        with self._ping_lock:
            flight = self._ping
            if flight is None or flight.done.is_set():
                flight = self._ping = _Ping(self, timeout_s)
        if not flight.done.wait(timeout_s):
            self._failing = True
            raise DatabaseUnavailable(f"no answer to a ping within {timeout_s:g} s")
        if flight.error is not None:
            raise flight.error

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


class _Ping:
    """One ``SELECT 1`` on a named daemon thread; ``done`` is set when it answered or failed
    (with ``error``). A thread that never gets an answer ends with the session's TCP bound."""

    def __init__(self, db: Database, wait_s: float):
        self.done = threading.Event()
        self.error: DatabaseUnavailable | None = None
        self._db = db
        self._wait_s = wait_s
        threading.Thread(target=self._run, name="wamgr-db-ping", daemon=True).start()

    def _run(self) -> None:
        try:
            with self._db.connection(wait_s=self._wait_s) as conn:
                conn.execute("SELECT 1")
        except DatabaseUnavailable as exc:
            self.error = exc
        except Exception as exc:  # psycopg's other errors: the database refused the ping
            self.error = DatabaseUnavailable(str(exc).strip() or repr(exc))
        finally:
            self.done.set()
