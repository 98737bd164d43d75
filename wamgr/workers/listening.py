"""ListeningWorker: a worker that LISTENs on a connection of its own, which every listener of
wamgr is (commands, replies, freed leases, queued messages, status writes).

The base owns the channel's life cycle, so every listener opens, fails, recovers and stops
the same way. One iteration, on the worker's thread::

    no channel?   open one (connect, LISTEN); it is listening now; if a warning was written
                  meanwhile, say "<what>: listening again"; then on_listening(reopened)
    stopping?     end here (stop's notification may have come before LISTEN was in place)
    listen(channel)   one wait on it, bounded, and what to do with what came

An iteration that fails closes the channel (it may be broken) and the next one opens a new
one after :data:`RECONNECT_DELAY_S`. A wamgr error (the database is down) is a warning,
written once per :data:`WARNING_INTERVAL_S` while it lasts, with how many were held back;
anything else is a bug and gets its traceback. A stop sends the notification that ends the
wait at once (the channel's wait is on its connection, not on the worker's wake event), and
the channel closes after the last iteration.

A subclass says which channel it opens and how its wait is ended (constructor arguments),
what one wait does (:meth:`ListeningWorker.listen`) and, when notifications missed while the
channel was closed matter, what to read again once it is open (:meth:`on_listening`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from loguru import logger

from wamgr.clock import Clock
from wamgr.errors import DatabaseUnavailable, WamgrError
from wamgr.log_limits import RateLimitedLog
from wamgr.store.listen import ListenChannel
from wamgr.workers.base import AT_ONCE, Worker

#: Seconds to wait before re-opening a listening connection that failed.
RECONNECT_DELAY_S = 1.0
#: Seconds between two warnings of a listener that keeps failing.
WARNING_INTERVAL_S = 30.0

ChannelT = TypeVar("ChannelT", bound=ListenChannel)


class ListeningWorker(Worker, Generic[ChannelT]):
    """A named worker that holds one listening channel and waits on it (see above).

    ``open_channel()`` opens the channel (raising DatabaseUnavailable if it cannot);
    ``wake_channel()`` sends a notification that channel hears, to end its wait when the
    worker is asked to stop (a failure to send is ignored: the wait then ends at its own
    timeout). State the base owns is prefixed ``_listen_``.
    """

    #: What the warning adds about what waits while the channel is down ("" for nothing).
    while_down = ""

    def __init__(
        self,
        name: str,
        open_channel: Callable[[], ChannelT],
        wake_channel: Callable[[], None],
        *,
        clock: Clock | None = None,
    ):
        super().__init__(name, clock=clock)
        self._listen_open = open_channel
        self._listen_wake = wake_channel
        self._listen_channel: ChannelT | None = None
        self._listen_opened_before = False
        self._listen_ready = threading.Event()
        self._listen_warnings = RateLimitedLog(WARNING_INTERVAL_S)

    def wait_listening(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds until LISTEN is in place (after :meth:`start`, or
        while the channel is being opened again); returns whether it is."""
        return self._listen_ready.wait(timeout)

    # --- hooks for subclasses -----------------------------------------------------------

    def listen(self, channel: ChannelT) -> None:
        """Wait once on ``channel``, for at most the subclass's own timeout, and act on the
        notifications that came (or on the timeout). Pass ``give_up=lambda: self.stopping``
        (or its like) to the channel's wait, so a stop ends it. Raises DatabaseUnavailable
        if the connection broke."""
        raise NotImplementedError

    def on_listening(self, reopened: bool) -> None:
        """Runs on the thread each time LISTEN is in place, before the first wait on the new
        channel. ``reopened``: a channel was open before, so notifications sent while none
        was were missed (read again what they would have said)."""

    # --- the life cycle, shared ---------------------------------------------------------

    def iterate(self) -> float:
        """Open the channel if there is none, then wait on it once (:meth:`listen`)."""
        channel = self._listen_channel
        if channel is None:
            channel = self._listen_channel = self._listen_open()
            reopened, self._listen_opened_before = self._listen_opened_before, True
            self._listen_ready.set()
            self._listen_warnings.recovered(logger, "{}: listening again", self.what)
            self.on_listening(reopened)
        if self.stopping:
            return AT_ONCE
        self.listen(channel)
        return AT_ONCE

    def on_failure(self, exc: Exception) -> float:
        """Drop the channel (it may be broken) and listen again after a short delay."""
        self._listen_close()
        if self.stopping:
            return AT_ONCE  # the loop ends: nothing to retry, nothing worth a warning
        if isinstance(exc, WamgrError):
            detail = exc.detail if isinstance(exc, DatabaseUnavailable) else exc.format_message()
            self._listen_warnings.warning(
                logger,
                "{}: {}; listening again in {:g} s{}",
                self.what,
                detail,
                RECONNECT_DELAY_S,
                self.while_down,
            )
        else:
            logger.opt(exception=exc).error(
                "{} failed; listening again in {:g} s", self.what, RECONNECT_DELAY_S
            )
        return self.after(RECONNECT_DELAY_S)

    def on_stopping(self) -> None:
        """Notify the channel, so the wait on it ends now rather than at its timeout."""
        with contextlib.suppress(WamgrError):
            self._listen_wake()

    def on_stop(self) -> None:
        """Close the listening connection."""
        self._listen_close()

    def _listen_close(self) -> None:
        self._listen_ready.clear()
        channel, self._listen_channel = self._listen_channel, None
        if channel is not None:
            with contextlib.suppress(Exception):
                channel.close()
