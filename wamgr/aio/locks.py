"""Processing locks for asyncio code: :class:`~wamgr.store.locks.ProcessingLocks` with every
statement run off the loop, and ``hold`` as an ``async with`` that waits with
``asyncio.sleep`` between attempts (no thread sleeps on the application's behalf).

    async with amgr.locks.hold("shop-1:15550001111", ttl=30, wait=5) as claim:
        ...  # LockBusy if it could not be had within 5 s
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from wamgr.aio.offload import OffLoop
from wamgr.errors import LockBusy, WamgrError
from wamgr.store.locks import (
    HOLD_BACKOFF_MAX_S,
    HOLD_BACKOFF_MIN_S,
    Claim,
    ProcessingLock,
    ProcessingLocks,
    validate_lock_key,
    validate_seconds,
    warn_lost_before_release,
    warn_release_failed,
)


class AsyncClaim:
    """One holding of a processing lock (see :class:`~wamgr.store.locks.Claim`)."""

    def __init__(self, claim: Claim, offload: OffLoop):
        self.claim = claim
        self._offload = offload

    @property
    def key(self) -> str:
        """The key held."""
        return self.claim.key

    @property
    def token(self) -> int:
        """The fencing token of this claim (grows with every claim of any key)."""
        return self.claim.token

    @property
    def expires_at(self) -> datetime:
        """When the claim lapses unless extended (the database's clock)."""
        return self.claim.expires_at

    async def release(self) -> bool:
        """Give the lock up; True if it was still ours and unexpired until now."""
        return await self._offload.run(self.claim.release)

    async def extend(self, ttl: float) -> bool:
        """Make the claim last ``ttl`` more seconds from now; False if it is no longer ours."""
        return await self._offload.run(self.claim.extend, ttl)

    def __repr__(self) -> str:
        return f"Async{self.claim!r}"


class AsyncProcessingLocks:
    """Claims, waits for, lists, clears and sweeps processing locks, as coroutines."""

    def __init__(self, locks: ProcessingLocks, offload: OffLoop):
        self._locks = locks
        self._offload = offload

    async def claim(self, key: str, ttl: float = 30.0) -> AsyncClaim | None:
        """Take ``key`` for ``ttl`` seconds if it is free or its claim expired; else None."""
        claim = await self._offload.run(self._locks.claim, key, ttl)
        return None if claim is None else AsyncClaim(claim, self._offload)

    @asynccontextmanager
    async def hold(
        self, key: str, ttl: float = 30.0, wait: float = 5.0
    ) -> AsyncIterator[AsyncClaim]:
        """Hold ``key`` for the ``async with`` block, waiting at most ``wait`` seconds for it
        (LockBusy after that, naming when the current claim expires). Released when the block
        ends, however it ends; a claim lost before that is logged as a warning."""
        key = validate_lock_key(key)
        ttl = validate_seconds("ttl", ttl)
        wait = validate_seconds("wait", wait, allow_zero=True)
        claim = await self._claim_within(key, ttl, wait)
        try:
            yield claim
        finally:
            await self._let_go(claim)

    async def holder(self, key: str) -> ProcessingLock | None:
        """The current row of ``key`` (expired or not), or None."""
        return await self._offload.run(self._locks.holder, key)

    async def all(self) -> list[ProcessingLock]:
        """Every processing-lock row, ordered by key."""
        return await self._offload.run(self._locks.all)

    async def clear(self, key: str) -> ProcessingLock | None:
        """Delete the lock of ``key`` whoever holds it; returns the row deleted, or None."""
        return await self._offload.run(self._locks.clear, key)

    async def sweep(self) -> int:
        """Delete every expired lock; returns how many."""
        return await self._offload.run(self._locks.sweep)

    async def _claim_within(self, key: str, ttl: float, wait: float) -> AsyncClaim:
        deadline = time.monotonic() + wait
        pause = HOLD_BACKOFF_MIN_S
        while True:
            claim = await self.claim(key, ttl)
            if claim is not None:
                return claim
            left = deadline - time.monotonic()
            if left <= 0:
                break
            await asyncio.sleep(
                min(left, random.uniform(pause, min(2 * pause, HOLD_BACKOFF_MAX_S)))
            )
            pause = min(2 * pause, HOLD_BACKOFF_MAX_S)
        current = await self.holder(key)
        if current is None:
            raise LockBusy(key, wait, None, None)
        raise LockBusy(key, wait, current.expires_at, current.owner)

    async def _let_go(self, claim: AsyncClaim) -> None:
        try:
            released = await claim.release()
        except WamgrError as exc:
            warn_release_failed(claim.claim, exc)
            return
        if not released:
            warn_lost_before_release(claim.claim)
