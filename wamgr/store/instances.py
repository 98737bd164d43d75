"""The ``wamgr_instances`` table: which process incarnation holds each instance id.

An instance id names one running manager in leases, status rows and commands. Two processes
started with the same id would otherwise share its leases and open two sockets for one
account, so every start claims the id for a fresh *incarnation* (a random uuid) in ONE
statement: the row is inserted, or taken over only if it has expired. A live holder makes the
claim fail with :class:`~wamgr.errors.InstanceIdInUse`, naming it.

The holder keeps its row alive with every lease renewal (one statement with the leases, see
:meth:`~wamgr.store.leases.LeaseStore.renew`), and every lease it takes carries its
incarnation. Expiry is judged by the database's clock; a holder that crashed blocks the id for
at most the TTL it claimed it with (``lease_ttl``). A clean stop deletes the row at once.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime

from loguru import logger

from wamgr.errors import DatabaseUnavailable, InstanceIdInUse
from wamgr.store.db import Database

#: Claims tried before giving up on a holder that keeps letting go and coming back.
_CLAIM_TRIES = 3

_CLAIM = """
WITH prior AS (
    SELECT host, pid, expires_at FROM wamgr_instances WHERE instance_id = %(id)s
)
INSERT INTO wamgr_instances AS i (instance_id, incarnation, host, pid, started_at, expires_at)
VALUES (%(id)s, %(incarnation)s, %(host)s, %(pid)s, now(),
        now() + %(ttl)s * interval '1 second')
ON CONFLICT (instance_id) DO UPDATE
   SET incarnation = EXCLUDED.incarnation, host = EXCLUDED.host, pid = EXCLUDED.pid,
       started_at = EXCLUDED.started_at, expires_at = EXCLUDED.expires_at
 WHERE i.expires_at <= now()
RETURNING i.started_at, (SELECT host FROM prior), (SELECT pid FROM prior),
          (SELECT expires_at FROM prior)
"""


@dataclass(frozen=True, slots=True)
class InstanceClaim:
    """This process's hold on an instance id: leases are taken and renewed only under it."""

    instance_id: str
    incarnation: uuid.UUID
    host: str
    pid: int
    started_at: datetime


@dataclass(frozen=True, slots=True)
class InstanceRow:
    """An instance row as stored (its holder may have crashed: see ``expires_at``)."""

    instance_id: str
    incarnation: uuid.UUID
    host: str
    pid: int
    started_at: datetime
    expires_at: datetime


class InstanceStore:
    """Claims, looks up and releases instance ids."""

    def __init__(self, db: Database):
        self._db = db

    def claim(
        self, instance_id: str, ttl_s: float, *, host: str | None = None, pid: int | None = None
    ) -> InstanceClaim:
        """Claim ``instance_id`` for a new incarnation of this process (host and pid default
        to this process's), for ``ttl_s`` seconds unless renewed.

        Raises InstanceIdInUse, naming the holder, if another live process holds it. A row
        whose holder has expired is taken over (with a warning naming that holder).
        """
        params = {
            "id": instance_id,
            "incarnation": uuid.uuid4(),
            "host": host or socket.gethostname(),
            "pid": os.getpid() if pid is None else pid,
            "ttl": ttl_s,
        }
        seen: InstanceRow | None = None
        for _ in range(_CLAIM_TRIES):
            with self._db.connection() as conn:
                row = conn.execute(_CLAIM, params).fetchone()
            if row is not None:
                started_at, prior_host, prior_pid, prior_expiry = row
                if prior_host is not None:
                    logger.warning(
                        "instance id {} was held by pid {} on {}, whose claim expired at {}: "
                        "taking it over",
                        instance_id,
                        prior_pid,
                        prior_host,
                        prior_expiry,
                    )
                return InstanceClaim(
                    instance_id, params["incarnation"], params["host"], params["pid"], started_at
                )
            seen, live = self._holder(instance_id)
            if live:
                break
            # released, or expired, between the claim and the look: claim again
        if seen is None:
            raise DatabaseUnavailable(f"the claim of instance id {instance_id!r} kept failing")
        raise InstanceIdInUse(instance_id, seen.host, seen.pid, seen.started_at, seen.expires_at)

    def release(self, claim: InstanceClaim) -> bool:
        """Give the id up if ``claim`` still holds it (its row is deleted); returns whether it
        did. Another process may claim the id at once."""
        with self._db.connection() as conn:
            cur = conn.execute(
                "DELETE FROM wamgr_instances WHERE instance_id = %s AND incarnation = %s",
                (claim.instance_id, claim.incarnation),
            )
            return cur.rowcount > 0

    def holder(self, instance_id: str) -> InstanceRow | None:
        """The row of ``instance_id`` (expired or not), or None."""
        return self._holder(instance_id)[0]

    def _holder(self, instance_id: str) -> tuple[InstanceRow | None, bool]:
        """The row of ``instance_id`` or None, and whether it is live by the database clock."""
        with self._db.connection() as conn:
            row = conn.execute(
                "SELECT instance_id, incarnation, host, pid, started_at, expires_at,"
                " expires_at > now() FROM wamgr_instances WHERE instance_id = %s",
                (instance_id,),
            ).fetchone()
        if row is None:
            return None, False
        return InstanceRow(*row[:6]), bool(row[6])
