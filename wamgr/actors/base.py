"""Message dispatch shared by wamgr's actors.

Each actor names the handler of each message type in two tables: ``commands`` (asked; the
handler's return value or exception goes back to the asker) and ``events`` (told; an
exception is logged and contained, so one bad event never kills the actor; pykka's default
for an exception raised by a told message is to stop the actor).
"""

from __future__ import annotations

import queue
from typing import Any, ClassVar

import pykka
from loguru import logger

from wamgr.actors.pool import PooledActor


class Dispatching(pykka.Actor):
    """Routes typed messages to handler methods (the two tables); mixed into an actor kind."""

    commands: ClassVar[dict[type, str]] = {}
    events: ClassVar[dict[type, str]] = {}

    def on_receive(self, message: Any) -> Any:
        """Run the handler of ``message``; contain and log failures of told events."""
        kind = type(message)
        name = self.commands.get(kind)
        if name is not None:
            return getattr(self, name)(message)
        name = self.events.get(kind)
        if name is None:
            logger.warning(
                "{} got a message it does not handle: {!r}", type(self).__name__, message
            )
            return None
        try:
            getattr(self, name)(message)
        except Exception:
            logger.exception("{} failed handling {!r}", type(self).__name__, message)
        return None


class DispatchingActor(Dispatching, pykka.ThreadingActor):
    """A dispatching actor on a thread of its own (the registry, supervisor, lease keeper)."""

    @staticmethod
    def _create_actor_inbox() -> queue.SimpleQueue[Any]:
        """pykka's hook for an actor's inbox, which needs only ``put``, ``get`` and ``empty``:
        a SimpleQueue (in C) costs ~3 KiB less than ``queue.Queue`` (three Conditions)."""
        return queue.SimpleQueue()


class PooledDispatchingActor(Dispatching, PooledActor):
    """A dispatching actor whose turns run on an :class:`~wamgr.actors.pool.ActorPool`
    (one per tenant: thousands share a few threads)."""
