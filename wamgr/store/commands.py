"""Commands for the instance that runs a tenant: ``wamgr_commands`` and LISTEN/NOTIFY.

Any instance, and the CLI, can be asked to connect, reconnect, disconnect or log out any
tenant; only the instance holding the tenant's lease can act on its socket. The asker writes
the desired state, then :meth:`CommandStore.send` writes a command row addressed to the live
lease holder and wakes it with ``NOTIFY wamgr_commands, '<holder>'``, both in ONE statement.
Every manager runs a command listener (:mod:`wamgr.workers.command_listener`) on a dedicated
connection (a :class:`CommandChannel`) that takes the rows addressed to it (or to any
instance) and hands them to the manager.

A notification can be missed (the listening connection was being re-opened), so the listener
also looks for rows every few seconds. A command not taken within :data:`COMMAND_TTL_S` is
dropped: its target is gone, and the claim loop and the desired state take over from there.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from wamgr.store.db import Database
from wamgr.store.listen import ListenChannel

#: The NOTIFY channel; the payload is the target instance id, or ANY_INSTANCE.
CHANNEL = "wamgr_commands"
#: Target of a command that any instance may run (no instance holds the tenant).
ANY_INSTANCE = "*"
#: Seconds after which a command nobody took is dropped.
COMMAND_TTL_S = 60.0


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


class CommandChannel(ListenChannel):
    """A dedicated connection that LISTENs for the commands (and calls) sent to one instance."""

    def __init__(self, database_url: str, instance_id: str, *, connect_timeout_s: float):
        self._me = instance_id
        super().__init__(database_url, CHANNEL, connect_timeout_s=connect_timeout_s)

    def wait(self, timeout_s: float, give_up: Callable[[], bool] = lambda: False) -> bool:
        """Wait at most ``timeout_s`` seconds for a notification addressed to this instance
        (or to any); returns whether one came. ``give_up()`` is asked at every notification
        (for anyone) and ends the wait when true. Raises DatabaseUnavailable if the connection
        broke (close it and open a new channel)."""
        for payload in self.payloads(timeout_s):
            if payload in (self._me, ANY_INSTANCE):
                return True
            if give_up():
                return False
        return False
