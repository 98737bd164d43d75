"""The command listener: runs the commands other instances (and the CLI) send to this one.

One named worker holds a :class:`~wamgr.store.commands.CommandChannel` (a connection that
LISTENs) and, whenever a notification for this instance arrives or every ``poll_s``
seconds (a notification can be missed while the connection is re-opened), takes the
calls addressed to it (handing them to the call runners, which reply) and the command rows
addressed to it, and applies those. A connection that breaks is re-opened after
:data:`RECONNECT_DELAY_S`; while it keeps failing (the database is down) the warning is
written once per :data:`WARNING_INTERVAL_S`, with how many were held back, and a line says
when it listens again. The SQL is in :mod:`wamgr.store.commands`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

from loguru import logger

from wamgr.errors import DatabaseUnavailable, WamgrError
from wamgr.log_limits import RateLimitedLog
from wamgr.store.calls import CallStore, PendingCall
from wamgr.store.commands import Command, CommandChannel, CommandStore
from wamgr.workers.base import AT_ONCE, Worker

#: Seconds between two looks for commands when no notification came.
POLL_S = 5.0
#: Seconds to wait before re-opening a listening connection that failed.
RECONNECT_DELAY_S = 1.0
#: Stale commands are dropped every this many looks (a minute at the default poll).
DROP_STALE_EVERY = 12
#: Seconds between two warnings of a listener that keeps failing.
WARNING_INTERVAL_S = 30.0


class CommandListener(Worker):
    """A named worker that LISTENs on its own connection and runs the commands sent to us.

    ``apply(tenant_id, command)`` runs on this thread; one that raises is logged and the
    next command goes on. With ``calls``, the calls sent here are taken too and handed to
    ``on_calls`` (which must not block: the call runners' ``submit``). Its waits are on the
    connection, not the wake event: ``stop`` sends this instance a notification to end the
    wait at once.
    """

    what = "command listener"

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
        calls: CallStore | None = None,
        on_calls: Callable[[list[PendingCall]], None] | None = None,
    ):
        super().__init__(name)
        self._store = store
        self._url = database_url
        self._me = instance_id
        self._apply = apply
        self._calls = calls
        self._on_calls = on_calls
        self._poll_s = poll_s
        self._connect_timeout_s = connect_timeout_s
        self._channel: CommandChannel | None = None
        self._looks = 0
        self._listening = threading.Event()
        self._warnings = RateLimitedLog(WARNING_INTERVAL_S)

    def wait_listening(self, timeout: float) -> bool:
        """Wait until LISTEN is in place (after :meth:`start`); False, with a warning, if it
        is not within ``timeout`` seconds (commands are then picked up by polling)."""
        if self._listening.wait(timeout):
            return True
        logger.warning(
            "the command listener is not listening yet; commands from other instances "
            "are picked up every {:g} s until it is",
            self._poll_s,
        )
        return False

    def run_once(self) -> int:
        """Hand over the calls and apply the commands waiting for us; returns how many
        commands ran."""
        if self._calls is not None and self._on_calls is not None:
            self._on_calls(self._calls.take(self._me))  # first: someone waits for each
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

    def iterate(self) -> float:
        """(Re)open the channel if needed, run what waits, then wait for a notification."""
        if self._channel is None:
            self._channel = CommandChannel(
                self._url, self._me, connect_timeout_s=self._connect_timeout_s
            )
            self._listening.set()
            self._warnings.recovered(logger, "command listener: listening again")
        self.run_once()
        if self._looks % DROP_STALE_EVERY == 0:
            self._store.drop_stale()
            if self._calls is not None:
                self._calls.drop_stale()
        self._looks += 1
        self._channel.wait(self._poll_s, give_up=lambda: self.stopping)
        return AT_ONCE

    def on_failure(self, exc: Exception) -> float:
        """Drop the connection (it may be broken) and listen again after a short delay."""
        self._close_channel()
        if self.stopping:
            return AT_ONCE  # the loop ends: nothing to retry, nothing worth a warning
        if isinstance(exc, WamgrError):
            detail = exc.detail if isinstance(exc, DatabaseUnavailable) else exc.format_message()
            self._warnings.warning(
                logger, "command listener: {}; listening again in {:g} s", detail, RECONNECT_DELAY_S
            )
        else:
            logger.opt(exception=exc).error(
                "command listener failed; listening again in {:g} s", RECONNECT_DELAY_S
            )
        return self.after(RECONNECT_DELAY_S)

    def on_stopping(self) -> None:
        """Notify ourselves, so the wait on the connection ends now, not at the next poll."""
        with contextlib.suppress(WamgrError):
            self._store.wake(self._me)

    def on_stop(self) -> None:
        """Close the listening connection."""
        self._close_channel()

    def _close_channel(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            with contextlib.suppress(Exception):
                channel.close()
