"""Commands for the instance that runs a tenant: ``wamgr_commands`` and LISTEN/NOTIFY.

Any instance, and the CLI, can be asked to connect, reconnect, disconnect or log out any
tenant; only the instance holding the tenant's lease can act on its socket. The asker writes
the desired state, then :meth:`CommandStore.send` writes a command row addressed to the live
lease holder and wakes it with ``NOTIFY wamgr_commands, '<holder>'``, both in ONE statement.
Every manager runs a :class:`CommandListener` on a dedicated connection that takes the rows
addressed to it (or to any instance) and hands them to the manager.

A notification can be missed (the listening connection was being re-opened), so the listener
also looks for rows every ``poll_s``. A command not taken within :data:`COMMAND_TTL_S` is
dropped: its target is gone, and the claim loop and the desired state take over from there.
"""

from __future__ import annotations

import contextlib
import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from loguru import logger

from wamgr.errors import WamgrError
from wamgr.store.db import Database

#: The NOTIFY channel; the payload is the target instance id, or ANY_INSTANCE.
CHANNEL = "wamgr_commands"
#: Target of a command that any instance may run (no instance holds the tenant).
ANY_INSTANCE = "*"
#: Seconds after which a command nobody took is dropped.
COMMAND_TTL_S = 60.0
#: Seconds between two looks for commands when no notification came.
POLL_S = 5.0
#: Seconds to wait before re-opening a listening connection that failed.
RECONNECT_DELAY_S = 1.0


class Command(enum.StrEnum):
    """What can be asked of the instance that runs a tenant."""

    CONNECT = "connect"
    RECONNECT = "reconnect"
    DISCONNECT = "disconnect"  # close the link, no logout; desired stopped
    LOGOUT = "logout"  # unlink the device, clear its credentials; desired stopped


@dataclass(frozen=True, slots=True)
class PendingCommand:
    """A command row taken by its target."""

    id: int
    tenant_id: str
    command: Command
    sender: str | None


_SEND = """
WITH holder AS (
    SELECT owner FROM wamgr_leases WHERE tenant_id = %(tenant)s AND expires_at > now()
), target AS (
    SELECT owner AS target FROM holder WHERE owner IS DISTINCT FROM %(sender)s
    UNION ALL
    SELECT NULL WHERE %(anyone)s AND NOT EXISTS (SELECT 1 FROM holder)
), ins AS (
    INSERT INTO wamgr_commands (tenant_id, command, target, sender)
    SELECT %(tenant)s, %(command)s, target, %(sender)s FROM target
    RETURNING target
)
SELECT coalesce(target, '*'), pg_notify('wamgr_commands', coalesce(target, '*')) FROM ins
"""

_TAKE = """
DELETE FROM wamgr_commands WHERE id IN (
    SELECT id FROM wamgr_commands
     WHERE (target = %(me)s OR target IS NULL)
       AND created_at > now() - %(ttl)s * interval '1 second'
     ORDER BY id FOR UPDATE SKIP LOCKED)
RETURNING id, tenant_id, command, sender
"""


class CommandStore:
    """Sends commands to the instance that runs a tenant, and takes those sent to us."""

    def __init__(self, db: Database):
        self._db = db

    def send(
        self, tenant_id: str, command: Command, *, sender: str | None, anyone: bool = False
    ) -> str | None:
        """Address ``command`` to the live holder of the tenant's lease, unless that is
        ``sender``; with ``anyone``, to any instance when no live lease exists.

        Returns the target (an instance id, or :data:`ANY_INSTANCE`), or None if nothing was
        sent (no other live holder, and not ``anyone``).
        """
        with self._db.connection() as conn:
            row = conn.execute(
                _SEND,
                {
                    "tenant": tenant_id,
                    "command": str(command),
                    "sender": sender,
                    "anyone": anyone,
                },
            ).fetchone()
        return row[0] if row else None

    def take(self, instance_id: str) -> list[PendingCommand]:
        """Delete and return, oldest first, the live commands for ``instance_id`` or for any
        instance; another instance taking at the same moment gets none of the same rows."""
        with self._db.connection() as conn:
            rows = conn.execute(_TAKE, {"me": instance_id, "ttl": COMMAND_TTL_S}).fetchall()
        return sorted(
            (PendingCommand(row[0], row[1], Command(row[2]), row[3]) for row in rows),
            key=lambda c: c.id,
        )

    def drop_stale(self) -> int:
        """Delete commands nobody took within :data:`COMMAND_TTL_S`; returns how many."""
        with self._db.connection() as conn:
            cur = conn.execute(
                "DELETE FROM wamgr_commands WHERE created_at <= now() - %s * interval '1 second'",
                (COMMAND_TTL_S,),
            )
            return cur.rowcount

    def wake(self, instance_id: str) -> None:
        """Send the notification ``instance_id`` listens for (used to stop its listener)."""
        with self._db.connection() as conn:
            conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, instance_id))


class CommandListener:
    """A named thread that LISTENs on its own connection and runs the commands sent to us.

    ``apply(tenant_id, command)`` runs on this thread; one that raises is logged and the
    next command goes on.
    """

    def __init__(
        self,
        store: CommandStore,
        database_url: str,
        instance_id: str,
        apply: Callable[[str, Command], None],
        *,
        poll_s: float = POLL_S,
        connect_timeout_s: float = 10.0,
        name: str = "wamgr-commands",
    ):
        self._store = store
        self._url = database_url
        self._me = instance_id
        self._apply = apply
        self._poll_s = poll_s
        self._connect_timeout_s = connect_timeout_s
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self, timeout: float) -> None:
        """Start listening; returns once LISTEN is in place (or ``timeout`` passed)."""
        self._thread.start()
        if not self._listening.wait(timeout):
            logger.warning(
                "the command listener is not listening yet; commands from other instances "
                "are picked up every {:g} s until it is",
                self._poll_s,
            )

    def stop(self, timeout: float) -> None:
        """End the thread, waiting at most ``timeout`` seconds."""
        self._stop.set()
        if not self._thread.is_alive():
            return
        with contextlib.suppress(WamgrError):  # else the poll timeout ends the wait
            self._store.wake(self._me)
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning("command listener did not finish within {:g} s", timeout)

    def run_once(self) -> int:
        """Take and apply the commands waiting for us; returns how many ran."""
        commands = self._store.take(self._me)
        for pending in commands:
            log = logger.bind(tenant=pending.tenant_id)
            log.info("{} asked by {}", pending.command, pending.sender or "the CLI")
            try:
                self._apply(pending.tenant_id, pending.command)
            except WamgrError as exc:
                log.warning("{} failed: {}", pending.command, exc.format_message())
            except Exception:
                log.exception("{} failed", pending.command)
        return len(commands)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    self._url, autocommit=True, connect_timeout=int(self._connect_timeout_s)
                ) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    self._listen(conn)
            except (psycopg.Error, WamgrError) as exc:
                if self._stop.is_set():
                    return
                logger.warning(
                    "command listener: {}; listening again in {:g} s",
                    str(exc).strip(),
                    RECONNECT_DELAY_S,
                )
                self._stop.wait(RECONNECT_DELAY_S)

    def _listen(self, conn: psycopg.Connection) -> None:
        passes = 0
        while not self._stop.is_set():
            self.run_once()
            passes += 1
            if passes % 12 == 1:  # now and then (a minute at the default poll)
                self._store.drop_stale()
            for notify in conn.notifies(timeout=self._poll_s):
                if notify.payload in (self._me, ANY_INSTANCE) or self._stop.is_set():
                    break
