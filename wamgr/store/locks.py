"""The ``wamgr_processing_locks`` table: locks an application holds while it works on a key.

A key is free text (a conversation is usually ``tenant:prospect``). Taking a lock is ONE
statement: insert the row, or take over a row whose claim has expired, with a fresh token
from a sequence; a row someone else holds unexpired is left alone and the claim is refused.
There is never a read followed by a write, so two callers can never both be told yes.

The token is a fencing token: it grows with every claim of any key, so a holder that stalled
past its ttl (and was taken over) can be recognised by anything that stores the token beside
its writes. Release and extend act only while the row still carries the caller's token.
Expiry is computed with the database's clock (``now()``), never the caller's.

    claim = locks.claim("shop-1:15550001111", ttl=30)
    if claim is not None:
        try:
            ...  # answer the customer
        finally:
            claim.release()

    with locks.hold("shop-1:15550001111", ttl=30, wait=5) as claim:  # or LockBusy
        ...
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from loguru import logger

from wamgr.errors import InvalidDuration, InvalidLockKey, LockBusy, WamgrError
from wamgr.store.db import Database

#: Longest key, in characters.
MAX_KEY_LENGTH = 255
#: Longest ttl (and wait) accepted, in seconds: a processing lock is for a piece of work.
MAX_TTL_S = 86_400.0
#: First pause of :meth:`ProcessingLocks.hold` between attempts; it doubles up to the most.
HOLD_BACKOFF_MIN_S = 0.02
HOLD_BACKOFF_MAX_S = 0.2


def validate_lock_key(key: object) -> str:
    """Return ``key`` if it is a str of 1 to 255 characters without NUL; else InvalidLockKey."""
    if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_LENGTH or "\x00" in key:
        raise InvalidLockKey(key)
    return key


def validate_seconds(
    name: str, value: object, *, allow_zero: bool = False, maximum: float = MAX_TTL_S
) -> float:
    """Return ``value`` as float if it is a finite number of seconds in range; else
    InvalidDuration naming ``name``."""
    low = "0" if allow_zero else "more than 0"
    allowed = f"a number of seconds from {low} to {maximum:g}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidDuration(name, value, allowed)
    seconds = float(value)
    if not math.isfinite(seconds) or seconds > maximum or seconds < 0:
        raise InvalidDuration(name, value, allowed)
    if seconds == 0 and not allow_zero:
        raise InvalidDuration(name, value, allowed)
    return seconds


@dataclass(frozen=True, slots=True)
class ProcessingLock:
    """A processing-lock row as stored; ``expired`` is judged by the database's clock."""

    key: str
    token: int
    owner: str | None
    acquired_at: datetime
    expires_at: datetime
    expired: bool


_COLUMNS = "key, token, owner, acquired_at, expires_at, expires_at <= now()"

_CLAIM = """
INSERT INTO wamgr_processing_locks AS l (key, token, owner, expires_at)
VALUES (%(key)s, nextval('wamgr_lock_tokens'), %(owner)s,
        now() + %(ttl)s * interval '1 second')
ON CONFLICT (key) DO UPDATE
   SET token = EXCLUDED.token, owner = EXCLUDED.owner,
       acquired_at = now(), expires_at = EXCLUDED.expires_at
 WHERE l.expires_at <= now()
RETURNING token, expires_at
"""


class Claim:
    """One holding of a processing lock, identified by its fencing ``token``.

    It stays ours until ``expires_at`` (the database's clock) unless extended; after that
    anyone may take the key over. Store ``token`` beside whatever the work writes if a
    stalled holder must never overwrite a newer one's results.
    """

    __slots__ = ("_locks", "expires_at", "key", "token")

    def __init__(self, locks: ProcessingLocks, key: str, token: int, expires_at: datetime):
        self._locks = locks
        self.key = key
        self.token = token
        self.expires_at = expires_at

    def release(self) -> bool:
        """Give the lock up; True if it was still ours and unexpired until now.

        Does nothing to a lock someone else has taken over (or an operator cleared); our
        own expired row is deleted but the answer is False: the work overran its ttl.
        """
        return self._locks._release(self.key, self.token)

    def extend(self, ttl: float) -> bool:
        """Make the claim last ``ttl`` more seconds from now; False if it is no longer ours.

        A claim that has expired is lost even if nobody took it over yet: stop the work.
        """
        ttl = validate_seconds("ttl", ttl)
        expires_at = self._locks._extend(self.key, self.token, ttl)
        if expires_at is None:
            return False
        self.expires_at = expires_at
        return True

    def __repr__(self) -> str:
        return f"Claim(key={self.key!r}, token={self.token}, expires_at={self.expires_at!r})"


class ProcessingLocks:
    """Claims, waits for, lists, clears and sweeps processing locks.

    ``owner`` is recorded with every claim (wamgr's manager passes its instance id) so an
    operator can see who holds a key; it plays no part in who may take it.
    """

    def __init__(self, db: Database, owner: str | None = None):
        self._db = db
        self._owner = owner

    def claim(self, key: str, ttl: float = 30.0) -> Claim | None:
        """Take ``key`` for ``ttl`` seconds if it is free or its claim expired; else None.

        One atomic statement: of any number of concurrent callers, at most one gets a Claim.
        """
        key = validate_lock_key(key)
        ttl = validate_seconds("ttl", ttl)
        with self._db.connection() as conn:
            row = conn.execute(_CLAIM, {"key": key, "owner": self._owner, "ttl": ttl}).fetchone()
        return Claim(self, key, int(row[0]), row[1]) if row else None

    @contextmanager
    def hold(self, key: str, ttl: float = 30.0, wait: float = 5.0) -> Iterator[Claim]:
        """Hold ``key`` for the ``with`` block, waiting at most ``wait`` seconds to get it.

        Attempts are spaced by a short random backoff (20 ms doubling up to 200 ms, never
        past the wait); when the wait runs out it raises LockBusy, naming when the current
        claim expires. The lock is released when the block ends, however it ends; a claim
        lost before that (the block ran past ``ttl``) is logged as a warning.
        """
        key = validate_lock_key(key)
        ttl = validate_seconds("ttl", ttl)
        wait = validate_seconds("wait", wait, allow_zero=True)
        claim = self._claim_within(key, ttl, wait)
        try:
            yield claim
        finally:
            self._let_go(claim)

    def holder(self, key: str) -> ProcessingLock | None:
        """The current row of ``key`` (expired or not), or None."""
        key = validate_lock_key(key)
        with self._db.connection() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM wamgr_processing_locks WHERE key = %s", (key,)
            ).fetchone()
        return ProcessingLock(*row) if row else None

    def all(self) -> list[ProcessingLock]:
        """Every processing-lock row (expired ones not yet swept too), ordered by key."""
        with self._db.connection() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM wamgr_processing_locks ORDER BY key"
            ).fetchall()
        return [ProcessingLock(*row) for row in rows]

    def clear(self, key: str) -> ProcessingLock | None:
        """Delete the lock of ``key`` whoever holds it; returns the row deleted, or None.

        A holder still working is no longer protected: its release and extend return False.
        """
        key = validate_lock_key(key)
        with self._db.connection() as conn:
            row = conn.execute(
                f"DELETE FROM wamgr_processing_locks WHERE key = %s RETURNING {_COLUMNS}",
                (key,),
            ).fetchone()
        return ProcessingLock(*row) if row else None

    def sweep(self) -> int:
        """Delete every expired lock; returns how many. A claim taken over meanwhile stays."""
        with self._db.connection() as conn:
            cur = conn.execute("DELETE FROM wamgr_processing_locks WHERE expires_at <= now()")
            return cur.rowcount

    # --- internals ----------------------------------------------------------------------

    def _claim_within(self, key: str, ttl: float, wait: float) -> Claim:
        deadline = time.monotonic() + wait
        pause = HOLD_BACKOFF_MIN_S
        while True:
            claim = self.claim(key, ttl)
            if claim is not None:
                return claim
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(left, random.uniform(pause, min(2 * pause, HOLD_BACKOFF_MAX_S))))
            pause = min(2 * pause, HOLD_BACKOFF_MAX_S)
        current = self.holder(key)
        if current is None:
            raise LockBusy(key, wait, None, None)
        raise LockBusy(key, wait, current.expires_at, current.owner)

    def _let_go(self, claim: Claim) -> None:
        try:
            released = claim.release()
        except WamgrError as exc:
            warn_release_failed(claim, exc)
            return
        if not released:
            warn_lost_before_release(claim)

    def _release(self, key: str, token: int) -> bool:
        with self._db.connection() as conn:
            row = conn.execute(
                "DELETE FROM wamgr_processing_locks WHERE key = %s AND token = %s"
                " RETURNING expires_at > now()",
                (key, token),
            ).fetchone()
        return bool(row and row[0])

    def _extend(self, key: str, token: int, ttl: float) -> datetime | None:
        with self._db.connection() as conn:
            row = conn.execute(
                "UPDATE wamgr_processing_locks SET expires_at = now() + %s * interval '1 second'"
                " WHERE key = %s AND token = %s AND expires_at > now() RETURNING expires_at",
                (ttl, key, token),
            ).fetchone()
        return row[0] if row else None


def warn_release_failed(claim: Claim, exc: WamgrError) -> None:
    """Log that releasing ``claim`` failed (the lock then expires by itself)."""
    logger.warning(
        "could not release processing lock {!r} ({}); it expires by itself at {}",
        claim.key,
        exc.format_message(),
        claim.expires_at,
    )


def warn_lost_before_release(claim: Claim) -> None:
    """Log that ``claim`` was no longer held when released: another holder may have overlapped."""
    logger.warning(
        "processing lock {!r} (token {}) was lost before its release: the work ran "
        "past its ttl or an operator cleared it, so another holder may have overlapped",
        claim.key,
        claim.token,
    )
