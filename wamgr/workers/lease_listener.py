"""The freed-lease listener: wakes the claim loop the moment another instance gives leases up.

An instance that stops releases the leases of the links it closed in one statement that also
sends ``NOTIFY wamgr_leases_freed, '<its id>'`` (see
:meth:`~wamgr.store.leases.LeaseStore.release_owned`). One named worker per instance holds a
:class:`~wamgr.store.leases.FreedChannel` (a connection that LISTENs, not one per tenant) and
wakes the claim loop on every such notification, so the tenants are claimed within a
fraction of a second instead of at the next claim pass. A notification can be missed (the
connection was being re-opened); the claim loop's own passes catch up then. A connection that
breaks is re-opened after :data:`RECONNECT_DELAY_S`, with its warning rate-limited.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

from loguru import logger

from wamgr.errors import DatabaseUnavailable, WamgrError
from wamgr.log_limits import RateLimitedLog
from wamgr.store.leases import FreedChannel, LeaseStore
from wamgr.workers.base import AT_ONCE, Worker

#: Seconds one wait on the channel lasts before it is started again (nothing is polled).
WAIT_S = 60.0
#: Seconds to wait before re-opening a listening connection that failed.
RECONNECT_DELAY_S = 1.0
#: Seconds between two warnings of a listener that keeps failing.
WARNING_INTERVAL_S = 30.0


class FreedLeaseListener(Worker):
    """A named worker that calls ``on_freed()`` whenever another instance frees leases.

    ``on_freed`` runs on this thread and must not block (the claim loop's ``wake``). The
    waits are on the connection, not the wake event: ``stop`` sends an empty notification
    to end the wait at once.
    """

    what = "freed-lease listener"

    def __init__(
        self,
        leases: LeaseStore,
        database_url: str,
        instance_id: str,
        on_freed: Callable[[], None],
        *,
        connect_timeout_s: float = 10.0,
        name: str = "wamgr-freed-leases",
    ):
        super().__init__(name)
        self._leases = leases
        self._url = database_url
        self._me = instance_id
        self._on_freed = on_freed
        self._connect_timeout_s = connect_timeout_s
        self._channel: FreedChannel | None = None
        self._listening = threading.Event()
        self._warnings = RateLimitedLog(WARNING_INTERVAL_S)

    def wait_listening(self, timeout: float) -> bool:
        """Wait until LISTEN is in place (after :meth:`start`); False if it is not within
        ``timeout`` seconds (freed leases are then claimed at the next claim pass)."""
        return self._listening.wait(timeout)

    def iterate(self) -> float:
        """(Re)open the channel if needed, then wait for one notification and act on it."""
        if self._channel is None:
            self._channel = FreedChannel(self._url, connect_timeout_s=self._connect_timeout_s)
            self._listening.set()
            self._warnings.recovered(logger, "freed-lease listener: listening again")
        if self._channel.wait(WAIT_S, ignore=self._me, give_up=lambda: self.stopping):
            logger.debug("another instance freed leases: claiming now")
            self._on_freed()
        return AT_ONCE

    def on_failure(self, exc: Exception) -> float:
        """Drop the connection (it may be broken) and listen again after a short delay."""
        self._close_channel()
        if self.stopping:
            return AT_ONCE
        if isinstance(exc, WamgrError):
            detail = exc.detail if isinstance(exc, DatabaseUnavailable) else exc.format_message()
            self._warnings.warning(
                logger,
                "freed-lease listener: {}; listening again in {:g} s",
                detail,
                RECONNECT_DELAY_S,
            )
        else:
            logger.opt(exception=exc).error(
                "freed-lease listener failed; listening again in {:g} s", RECONNECT_DELAY_S
            )
        return self.after(RECONNECT_DELAY_S)

    def on_stopping(self) -> None:
        """End the wait on the connection now (an empty payload frees nothing)."""
        with contextlib.suppress(WamgrError):
            self._leases.notify_freed("")

    def on_stop(self) -> None:
        """Close the listening connection."""
        self._close_channel()

    def _close_channel(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            with contextlib.suppress(Exception):
                channel.close()
