"""A dedicated connection that LISTENs on one NOTIFY channel: what every listener of wamgr
(commands, replies, freed leases, queued messages, status writes) is built on."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg

from wamgr.errors import DatabaseUnavailable


class ListenChannel:
    """A dedicated connection that LISTENs on one NOTIFY channel.

    It is not from the pool: a LISTEN lives as long as its connection. Opening it raises
    DatabaseUnavailable if the database cannot be reached.
    """

    def __init__(self, database_url: str, channel: str, *, connect_timeout_s: float):
        try:
            self._conn = psycopg.connect(
                database_url, autocommit=True, connect_timeout=max(1, int(connect_timeout_s))
            )
        except psycopg.Error as exc:
            raise DatabaseUnavailable(str(exc).strip()) from exc
        try:
            self._conn.execute(f"LISTEN {channel}")
        except psycopg.Error as exc:
            self._conn.close()
            raise DatabaseUnavailable(str(exc).strip()) from exc

    def payloads(self, timeout_s: float, stop_after: int | None = None) -> Iterator[str]:
        """The payload of each notification that comes within ``timeout_s`` seconds (at most
        ``stop_after`` of them; the caller may also stop iterating when it has what it waited
        for). Raises DatabaseUnavailable if the connection broke (close it and open a new
        channel)."""
        try:
            for notify in self._conn.notifies(timeout=timeout_s, stop_after=stop_after):
                yield notify.payload
        except psycopg.Error as exc:
            raise DatabaseUnavailable(str(exc).strip()) from exc

    def close(self) -> None:
        """Close the connection (its LISTEN ends with it)."""
        self._conn.close()
