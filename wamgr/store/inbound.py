"""The ``wamgr_inbound`` table: which inbound message ids each tenant has already seen.

WhatsApp (and webhook retries, and a restarted process resuming a session) can deliver one
message more than once. :meth:`InboundLog.seen` records an id with ONE statement
(``INSERT … ON CONFLICT DO NOTHING``) and says whether this call recorded it, so of any
number of concurrent deliveries, in any number of processes, exactly one is told "new".
Ids are kept for a retention window (7 days by default) and then swept.
"""

from __future__ import annotations

from wamgr.errors import InvalidMessageId
from wamgr.status import validate_tenant_id
from wamgr.store.db import Database
from wamgr.store.locks import validate_seconds

#: Longest message id, in characters (WhatsApp's are about 20 to 32).
MAX_MESSAGE_ID_LENGTH = 255
#: Longest retention accepted, in seconds (ten years).
MAX_RETENTION_S = 10 * 365 * 86_400.0
#: Rows deleted per statement by :meth:`InboundLog.sweep`, so no statement runs long.
SWEEP_BATCH = 10_000


def validate_message_id(message_id: object) -> str:
    """Return ``message_id`` if it is a str of 1 to 255 characters without NUL; else
    InvalidMessageId."""
    if (
        not isinstance(message_id, str)
        or not 0 < len(message_id) <= MAX_MESSAGE_ID_LENGTH
        or "\x00" in message_id
    ):
        raise InvalidMessageId(message_id)
    return message_id


class InboundLog:
    """Records inbound message ids per tenant and forgets them after the retention window."""

    def __init__(self, db: Database):
        self._db = db

    def seen(self, tenant_id: str, message_id: str) -> bool:
        """Record that ``tenant_id`` received ``message_id``: True if this call recorded it
        (the first delivery: process it), False if it was already recorded (drop it)."""
        tenant_id = validate_tenant_id(tenant_id)
        message_id = validate_message_id(message_id)
        with self._db.connection() as conn:
            cur = conn.execute(
                "INSERT INTO wamgr_inbound (tenant_id, message_id) VALUES (%s, %s)"
                " ON CONFLICT DO NOTHING",
                (tenant_id, message_id),
            )
            return cur.rowcount == 1

    def sweep(self, retention_s: float, batch: int = SWEEP_BATCH) -> int:
        """Delete ids recorded more than ``retention_s`` seconds ago (database clock), in
        statements of at most ``batch`` rows; returns how many were deleted."""
        retention_s = validate_seconds("retention", retention_s, maximum=MAX_RETENTION_S)
        deleted = 0
        with self._db.connection() as conn:
            while True:
                cur = conn.execute(
                    "DELETE FROM wamgr_inbound WHERE (tenant_id, message_id) IN ("
                    " SELECT tenant_id, message_id FROM wamgr_inbound"
                    " WHERE seen_at < now() - %s * interval '1 second' LIMIT %s)",
                    (retention_s, batch),
                )
                deleted += cur.rowcount
                if cur.rowcount < batch:
                    return deleted
