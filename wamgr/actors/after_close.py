"""What a tenant does once its link reports ``Closed``: one ranked value, and the close under way.

Several commands can arrive while one link is closing (a reconnect, then a remove, then the
process stopping). The tenant keeps one pending :class:`AfterClose`; :func:`after_close`
says which request stands. The ranks, lowest first:

    REPORT < REOPEN < STOP < SHUTDOWN < CLEAR_AUTH

A new request replaces the pending one (the caller's latest wish: a connect after a remove
reopens, a remove after a connect stops), except that SHUTDOWN and CLEAR_AUTH are final: only
a higher rank replaces them. So the process stopping is never undone by a connect, and
credentials the operator cleared are cleared even if the process stops meanwhile.

Whether the close logged the device out is not part of the rank: it is a fact of the close
itself (the credentials of a link closed with logout are cleared, whatever follows).
:class:`PendingClose` keeps both, and says at the ``Closed`` what follows (:class:`CloseResult`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from wamgr.transport.base import CloseReason


class AfterClose(enum.IntEnum):
    """The pending "after close" of a tenant, by rank (see the module docstring)."""

    REPORT = 0  # nothing asked for: a close is a failure for the supervisor to judge
    REOPEN = 1  # connect / reconnect: open a new link (the lease is taken again first)
    STOP = 2  # remove: release the lease and stop
    SHUTDOWN = 3  # the process stops: forget the lease (released in one batch) and stop
    CLEAR_AUTH = 4  # the operator cleared the credentials: release the lease, logged_out


#: Requests that only a higher rank replaces.
FINAL = frozenset({AfterClose.SHUTDOWN, AfterClose.CLEAR_AUTH})


def after_close(pending: AfterClose, requested: AfterClose) -> AfterClose:
    """The request that stands when ``requested`` arrives while ``pending`` waits."""
    if pending in FINAL and requested < pending:
        return pending
    return requested


@dataclass(frozen=True, slots=True)
class CloseResult:
    """What a tenant does now that its link reported ``Closed``.

    ``logout``: a logout was asked, so the device's credentials are cleared first.
    ``failure``: not None when the close goes to the supervisor as a failure, for this reason.
    Otherwise ``after`` says what follows: REOPEN (if still wanted connected), or how to stop.
    ``detail``: what the tenant said when it closed the link for ``failure`` ("" if nothing).
    """

    logout: bool
    after: AfterClose
    failure: CloseReason | None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class _Closing:
    logout: bool
    cause: CloseReason | None
    detail: str = ""


class PendingClose:
    """The close under way on a tenant's link (if any) and what is to follow it."""

    __slots__ = ("_after", "_closing")

    def __init__(self) -> None:
        self._closing: _Closing | None = None
        self._after = AfterClose.REPORT

    @property
    def under_way(self) -> bool:
        """Whether the link was told to close and has not reported ``Closed`` yet."""
        return self._closing is not None

    def want(self, after: AfterClose) -> None:
        """Ask for ``after`` once the link has closed (ranked by :func:`after_close`)."""
        self._after = after_close(self._after, after)

    def begin(self, do_logout: bool, cause: CloseReason | None = None, detail: str = "") -> bool:
        """Record that the link is being closed, for ``cause`` (a failure, with ``detail``)
        or on request.

        Returns whether the link must be told; if a close is under way already it need not
        be, but a logout asked now is remembered (the credentials are cleared once closed).
        """
        if self._closing is not None:
            if do_logout and not self._closing.logout:
                self._closing = _Closing(True, self._closing.cause, self._closing.detail)
            return False
        self._closing = _Closing(do_logout, cause, detail)
        return True

    def end(self, reason: CloseReason, fenced: bool) -> CloseResult:
        """The link reported ``Closed(reason)``; ``fenced`` if the keeper closed it.

        A stop, shutdown or clear-auth asked for wins whatever closed the link. Otherwise a
        close nobody asked for (WhatsApp, the network, the keeper's fence) is a failure, and
        so is one asked for a reason (lease lost, corrupted keys); a close asked on request
        reopens or stops.
        """
        closing, self._closing = self._closing, None
        after, self._after = self._after, AfterClose.REPORT
        logout = closing is not None and closing.logout
        if after >= AfterClose.STOP:
            return CloseResult(logout, after, None)
        failure = closing.cause if closing is not None else reason
        detail = closing.detail if closing is not None else ""
        if fenced:
            failure, detail = CloseReason.LEASE_LOST, ""
        if failure is not None:
            return CloseResult(logout, AfterClose.REPORT, failure, detail)
        if after is AfterClose.REOPEN:
            return CloseResult(logout, AfterClose.REOPEN, None)
        return CloseResult(logout, AfterClose.STOP, None)  # asked to close, nothing follows
