"""wamgr for asyncio services: :class:`AsyncConnectionManager` and its processing locks.

Importing this package loads the manager (unlike ``import wamgr``).
"""

from wamgr.aio.events import AsyncSubscriber
from wamgr.aio.locks import AsyncClaim, AsyncProcessingLocks
from wamgr.aio.manager import AsyncConnectionManager
from wamgr.aio.offload import DEFAULT_MAX_THREADS

__all__ = [
    "DEFAULT_MAX_THREADS",
    "AsyncClaim",
    "AsyncConnectionManager",
    "AsyncProcessingLocks",
    "AsyncSubscriber",
]
