"""Device credentials in PostgreSQL: the store URL neonize gets, and per-device deletion.

neonize keeps each linked device's keys in whatsmeow's tables (``whatsmeow_device`` and
thirteen tables that reference it with ``ON DELETE CASCADE``, plus ``whatsmeow_privacy_tokens``
which does not). It takes its store as a ``postgres://`` URL, handed to Go's ``lib/pq``; any
string that does not start with ``postgres`` would be taken for an SQLite file name. This
module turns wamgr's database URL (a URL or a psycopg ``key=value`` conninfo) into that form,
and deletes exactly one device's rows. None of it imports neonize, so the parent process
(which must never load neonize's Go core) can use it.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlencode

import psycopg
from psycopg.conninfo import conninfo_to_dict

from wamgr.errors import ConfigError, DatabaseUnavailable

#: Seconds to wait for PostgreSQL when checking or deleting a device.
CONNECT_TIMEOUT_S = 10

#: ``application_name`` of neonize's connections, so ``pg_stat_activity`` shows them apart.
APPLICATION_NAME = "wamgr-neonize"

# user[.agent][:device]@server: the form of whatsmeow's JID.String(), and of wamgr_tenants.jid.
_JID = re.compile(r"^(?P<user>[^@:.]+)(?:\.(?P<agent>\d+))?(?::(?P<device>\d+))?@(?P<server>.+)$")


def store_url(database_url: str) -> str:
    """The ``postgres://`` URL neonize needs for the database ``database_url`` names.

    A URL is kept as it is (``application_name`` is added when missing); a ``key=value``
    conninfo is converted. A Unix-socket host becomes ``?host=/path``, which lib/pq
    understands. Raises ConfigError for anything that does not name a PostgreSQL database.
    """
    text = database_url.strip()
    if text.startswith(("postgres://", "postgresql://")):
        if "application_name=" in text:
            return text
        return f"{text}{'&' if '?' in text else '?'}application_name={APPLICATION_NAME}"
    try:
        params = conninfo_to_dict(text)
    except psycopg.ProgrammingError as exc:
        raise ConfigError(
            f"the auth database URL is neither a postgres:// URL nor a conninfo ({exc})"
        ) from exc
    if not params:
        raise ConfigError("the auth database URL is empty")
    user = quote(str(params.pop("user", "")), safe="")
    password = params.pop("password", None)
    host = str(params.pop("host", ""))
    port = params.pop("port", None)
    dbname = quote(str(params.pop("dbname", "")), safe="")
    credentials = user + (f":{quote(str(password), safe='')}" if password is not None else "")
    query: dict[str, str] = {}
    if host.startswith("/") or not host:
        netloc = f"{credentials}@" if credentials else ""
        if host:
            query["host"] = host
        if port:
            query["port"] = str(port)
    else:
        netloc = f"{credentials}@" if credentials else ""
        netloc += host + (f":{port}" if port else "")
        params.setdefault("sslmode", "prefer")  # libpq's default; lib/pq's may differ
    query.update({k: str(v) for k, v in params.items()})
    query.setdefault("application_name", APPLICATION_NAME)
    return f"postgres://{netloc}/{dbname}?{urlencode(query)}"


def parse_jid(jid: str) -> tuple[str, int, int, str]:
    """``(user, raw_agent, device, server)`` of a JID string; raises ValueError if malformed.

    A device's JID carries its device number (``15550001111:12@s.whatsapp.net``); that full
    form is what ``whatsmeow_device.jid`` holds and what resuming a device needs.
    """
    match = _JID.match(jid)
    if match is None:
        raise ValueError(f"not a WhatsApp JID: {jid!r} (expected user[:device]@server)")
    return (
        match["user"],
        int(match["agent"] or 0),
        int(match["device"] or 0),
        match["server"],
    )


def format_jid(user: str, raw_agent: int, device: int, server: str) -> str:
    """The string form of a JID, as whatsmeow's ``JID.String()`` writes it."""
    if raw_agent > 0:
        return f"{user}.{raw_agent}:{device}@{server}"
    if device > 0:
        return f"{user}:{device}@{server}"
    if user:
        return f"{user}@{server}"
    return server


class DeviceStore:
    """Reads and deletes devices in whatsmeow's tables (no Go needed)."""

    def __init__(self, url: str):
        self.url = url

    def _connect(self) -> psycopg.Connection:
        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        except psycopg.Error as exc:
            raise DatabaseUnavailable(f"the auth store is unreachable: {exc}".strip()) from exc

    def device_exists(self, jid: str) -> bool:
        """Whether whatsmeow holds keys for device ``jid`` (False if its tables do not exist).

        Resuming a JID that has no row crashes neonize's Go core (``NewClient(nil)``), so a
        link checks this first. whatsmeow deletes the row itself on 401/403/406.
        """
        with self._connect() as conn:
            try:
                if not _has_table(conn, "whatsmeow_device"):
                    return False
                row = conn.execute(
                    "SELECT 1 FROM whatsmeow_device WHERE jid = %s", (jid,)
                ).fetchone()
            except psycopg.OperationalError as exc:
                raise DatabaseUnavailable(str(exc).strip()) from exc
        return row is not None

    def delete_device(self, jid: str) -> int:
        """Delete device ``jid``: its row (the 13 referencing tables follow by cascade) and its
        privacy tokens. Returns how many device rows went (0 or 1). Other devices are untouched;
        the shared LID map is left alone. Run it only while no link of the device is alive.
        """
        with self._connect() as conn, conn.transaction():
            if _has_table(conn, "whatsmeow_privacy_tokens"):
                conn.execute("DELETE FROM whatsmeow_privacy_tokens WHERE our_jid = %s", (jid,))
            if not _has_table(conn, "whatsmeow_device"):
                return 0
            return conn.execute("DELETE FROM whatsmeow_device WHERE jid = %s", (jid,)).rowcount


def _has_table(conn: psycopg.Connection, name: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
    return bool(row and row[0])
