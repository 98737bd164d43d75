"""The command listener: runs the commands other instances (and the CLI) send to this one.

One named :class:`~wamgr.workers.listening.ListeningWorker` holds a
:class:`~wamgr.store.commands.CommandChannel` (a connection that LISTENs) and, whenever a
notification for this instance arrives or every ``poll_s`` seconds (a notification can be
missed while the connection is re-opened), takes the calls addressed to it (handing them to
the call runners, which reply) and the command rows addressed to it, and applies those. The
base re-opens a connection that breaks and rate-limits its warning. The SQL is in
:mod:`wamgr.store.commands`.
"""

from __future__ import annotations

from collections.abc import Callable

from loguru import logger

from wamgr.errors import WamgrError
from wamgr.store.calls import CallStore, PendingCall
from wamgr.store.commands import Command, CommandChannel, CommandStore
from wamgr.workers.listening import ListeningWorker

#: Seconds between two looks for commands when no notification came.
POLL_S = 5.0
#: Stale commands are dropped every this many looks (a minute at the default poll).
DROP_STALE_EVERY = 12


class CommandListener(ListeningWorker[CommandChannel]):
    """A named worker that LISTENs on its own connection and runs the commands sent to us.

    ``apply(tenant_id, command)`` runs on this thread; one that raises is logged and the
    next command goes on. With ``calls``, the calls sent here are taken too and handed to
    ``on_calls`` (which must not block: the call runners' ``submit``). ``stop`` sends this
    instance a notification to end the wait at once.
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
        super().__init__(
            name,
            lambda: CommandChannel(database_url, instance_id, connect_timeout_s=connect_timeout_s),
            lambda: store.wake(instance_id),
        )
        self._store = store
        self._me = instance_id
        self._apply = apply
        self._calls = calls
        self._on_calls = on_calls
        self._poll_s = poll_s
        self._looks = 0

    def wait_listening(self, timeout: float) -> bool:
        """Wait until LISTEN is in place (after :meth:`start`); False, with a warning, if it
        is not within ``timeout`` seconds (commands are then picked up by polling)."""
        if super().wait_listening(timeout):
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

    def listen(self, channel: CommandChannel) -> None:
        """Run what waits (now and then dropping stale commands and calls), then wait for a
        notification to this instance, or ``poll_s``."""
        self.run_once()
        if self._looks % DROP_STALE_EVERY == 0:
            self._store.drop_stale()
            if self._calls is not None:
                self._calls.drop_stale()
        self._looks += 1
        channel.wait(self._poll_s, give_up=lambda: self.stopping)
