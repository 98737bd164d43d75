"""Calls with a reply for the instance that holds a tenant: ``wamgr_calls`` and two NOTIFYs.

A command (:mod:`wamgr.store.commands`) is fire and forget; a call is answered. The asker
picks a call id, then :meth:`CallStore.send` writes the call for the live lease holder and
wakes it (``NOTIFY wamgr_commands, '<holder>'``) in ONE statement. The holder's command
listener takes the calls addressed to it (:meth:`CallStore.take`), runs them and writes each
reply (:meth:`CallStore.reply`), which wakes every asker's :class:`ReplyChannel` with
``NOTIFY wamgr_replies, '<call id>'``; the asker whose call it is reads the reply and deletes
the row in one statement (:meth:`CallStore.collect`). Instances need no address of each
other: only the database.

Every call has a deadline on the database clock: a holder takes only calls whose deadline
has not passed (a paused holder does not send what its asker gave up on), and rows left
behind by an asker or holder that died are deleted :data:`STALE_AFTER_S` after it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from wamgr.store.db import Database
from wamgr.store.listen import ListenChannel

#: The NOTIFY channel of replies; the payload is the call id.
REPLY_CHANNEL = "wamgr_replies"
#: Seconds after its deadline that a call row nobody collected is deleted.
STALE_AFTER_S = 60.0


@dataclass(frozen=True, slots=True)
class PendingCall:
    """A call taken by its target: what to run, and the seconds left until its deadline."""

    id: str
    tenant_id: str
    kind: str
    args: dict[str, Any]
    sender: str | None
    left_s: float


_SEND = """
WITH holder AS (
    SELECT owner FROM wamgr_leases
     WHERE tenant_id = %(tenant)s AND expires_at > now() AND owner IS DISTINCT FROM %(sender)s
), ins AS (
    INSERT INTO wamgr_calls (id, tenant_id, kind, args, target, sender, deadline)
    SELECT %(id)s, %(tenant)s, %(kind)s, %(args)s, owner, %(sender)s,
           now() + %(timeout)s * interval '1 second'
      FROM holder
    RETURNING target
)
SELECT target, pg_notify('wamgr_commands', target) FROM ins
"""

_TAKE = """
UPDATE wamgr_calls SET taken_at = now()
 WHERE id IN (SELECT id FROM wamgr_calls
               WHERE target = %(me)s AND taken_at IS NULL AND deadline > now()
               FOR UPDATE SKIP LOCKED)
RETURNING id::text, tenant_id, kind, args, sender,
          extract(epoch FROM deadline - now())::float8, created_at
"""

_REPLY = """
UPDATE wamgr_calls SET reply = %(reply)s, replied_at = now()
 WHERE id = %(id)s AND replied_at IS NULL
RETURNING pg_notify('wamgr_replies', id::text)
"""


class CallStore:
    """Sends calls to the holder of a tenant, takes those sent to us, and carries replies."""

    def __init__(self, db: Database):
        self._db = db

    def send(
        self,
        call_id: str,
        tenant_id: str,
        kind: str,
        args: dict[str, Any],
        *,
        sender: str | None,
        timeout_s: float,
    ) -> str | None:
        """Address a call to the live holder of the tenant's lease, unless that is
        ``sender``, with a deadline ``timeout_s`` seconds from now (database clock).

        Returns the holder it was sent to, or None if nothing was sent (no live holder, or
        the sender holds the tenant itself: the call is the sender's to run).
        """
        with self._db.connection() as conn:
            row = conn.execute(
                _SEND,
                {
                    "id": call_id,
                    "tenant": tenant_id,
                    "kind": kind,
                    "args": Jsonb(args),
                    "sender": sender,
                    "timeout": timeout_s,
                },
            ).fetchone()
        return row[0] if row else None

    def take(self, instance_id: str) -> list[PendingCall]:
        """Mark taken and return, oldest first, the calls for ``instance_id`` whose deadline
        has not passed; another taker at the same moment gets none of the same calls."""
        with self._db.connection() as conn:
            rows = conn.execute(_TAKE, {"me": instance_id}).fetchall()
        rows.sort(key=lambda row: row[6])
        return [PendingCall(r[0], r[1], r[2], r[3] or {}, r[4], r[5]) for r in rows]

    def reply(self, call_id: str, reply: dict[str, Any]) -> bool:
        """Store the reply to a call and wake its asker; False if the call is gone (its
        asker gave up and deleted it) or was answered already."""
        with self._db.connection() as conn:
            row = conn.execute(_REPLY, {"id": call_id, "reply": Jsonb(reply)}).fetchone()
        return row is not None

    def collect(self, call_id: str) -> dict[str, Any] | None:
        """The reply to a call, deleting the call; None (the row kept) if not answered yet."""
        with self._db.connection() as conn:
            row = conn.execute(
                "DELETE FROM wamgr_calls WHERE id = %s AND replied_at IS NOT NULL RETURNING reply",
                (call_id,),
            ).fetchone()
        return _reply(row[0]) if row else None

    def abandon(self, call_id: str) -> dict[str, Any] | None:
        """Delete a call its asker gives up on; returns its reply if one came meanwhile.

        A holder that took the call and answers later finds no row (its reply is dropped).
        """
        with self._db.connection() as conn:
            row = conn.execute(
                "DELETE FROM wamgr_calls WHERE id = %s RETURNING reply", (call_id,)
            ).fetchone()
        return _reply(row[0]) if row and row[0] is not None else None

    def drop_stale(self) -> int:
        """Delete calls more than :data:`STALE_AFTER_S` past their deadline (their asker
        or holder died); returns how many."""
        with self._db.connection() as conn:
            cur = conn.execute(
                "DELETE FROM wamgr_calls WHERE deadline <= now() - %s * interval '1 second'",
                (STALE_AFTER_S,),
            )
            return cur.rowcount

    def wake_replies(self) -> None:
        """Send an empty reply notification (used to end a reply channel's wait at stop)."""
        with self._db.connection() as conn:
            conn.execute("SELECT pg_notify(%s, '')", (REPLY_CHANNEL,))


def _reply(value: Any) -> dict[str, Any]:
    """A reply column as a dict (psycopg loads jsonb already; text is parsed)."""
    return json.loads(value) if isinstance(value, str) else dict(value)


class ReplyChannel(ListenChannel):
    """A dedicated connection that LISTENs for replies (one per instance, for all its calls).

    Every instance's channel hears every reply; each keeps those of its own calls.
    """

    def __init__(self, database_url: str, *, connect_timeout_s: float):
        super().__init__(database_url, REPLY_CHANNEL, connect_timeout_s=connect_timeout_s)
