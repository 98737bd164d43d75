"""A link to the simulated WhatsApp (:class:`SimLink`), and how its events reach the tenant.

A link holds no lock of its own: the simulator's one lock guards the link's state, which the
simulator changes (the ``_``-prefixed fields below are the simulator's to change). Events are
queued on the link under that lock and delivered by :func:`deliver` once it is released, in
order and by one thread at a time, so an ``on_event`` callback may call back into the
simulator (even close its own link) without deadlock or reordering.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

from loguru import logger

from wamgr.transport.base import EventCallback, LinkEvent

if TYPE_CHECKING:
    from wamgr.transport.outgoing import Outgoing
    from wamgr.transport.sim_messages import SimMessages as SimCore
    from wamgr.transport.sim_recorder import SimSocket

#: The links that got events during one operation, in order (a dict used as an ordered set);
#: they are delivered once the lock is released.
Touched = dict["SimLink", None]


class SimNotConnected(RuntimeError):
    """Raised when sending or delivering needs a connected socket and there is none."""


class LinkState(enum.StrEnum):
    """Where a :class:`SimLink` is in its one life."""

    NEW = "new"  # built, open() not called yet
    PARKED = "parked"  # open() called while dials are held
    PAIRING = "pairing"  # pairing socket open, QR shown
    CONNECTED = "connected"  # account socket open and logged in
    CLOSED = "closed"  # Closed reported; nothing follows


class SimLink:
    """A link to :class:`~wamgr.transport.sim.SimWhatsApp`: one socket's life for one tenant.

    Built by :meth:`SimWhatsApp.create_link`. It keeps the promises of
    :class:`~wamgr.transport.base.Link`: ``open`` and ``close`` never block, events arrive
    in order through ``on_event`` (possibly before ``open`` returns), and exactly one
    ``Closed`` event is reported, after which nothing follows.
    """

    def __init__(
        self,
        sim: SimCore,
        tenant_id: str,
        jid: str | None,
        generation: int,
        on_event: EventCallback,
        proxy: str | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.generation = generation
        self._sim = sim
        self._on_event = on_event
        self._proxy = proxy
        # Everything below is guarded by the simulator's lock.
        self._jid = jid
        self._state = LinkState.NEW
        self._socket: SimSocket | None = None
        self._qr: str | None = None
        self._outbox: list[LinkEvent] = []  # a few at a time: smaller than a deque
        self._delivering = False

    @property
    def jid(self) -> str | None:
        """The account this link resumes or paired with; None while pairing."""
        with self._sim._lock:
            return self._jid

    def open(self) -> None:
        """Dial the simulator without blocking; raises RuntimeError if called a second time."""
        self._sim._open(self)

    def close(self, do_logout: bool) -> None:
        """Close the socket and report ``Closed(REQUESTED)``; a closed link ignores this.

        With ``do_logout``, a logged-in socket first unlinks its device (later resumes of the
        JID get ``LOGGED_OUT``).
        """
        self._sim._close_link(self, do_logout)

    def send_text(self, to: str, text: str) -> str:
        """Record a sent message and return its new id; raises SimNotConnected if not connected."""
        return self._sim._send_text(self, to, text)

    def send(self, message: Outgoing) -> str | None:
        """Record any outgoing message (see SimWhatsApp.outgoing); the new message's id, or
        None for a receipt or presence. Raises SimNotConnected if not connected."""
        return self._sim._send(self, message)

    def download_media(self, message_id: str) -> tuple[bytes, str]:
        """The bytes and mime type of inbound message ``message_id``'s media; LookupError if
        the account received no media with that id."""
        return self._sim._download(self, message_id)

    def request_pair_code(self, phone: str) -> str:
        """A code the phone can type instead of scanning the QR (see SimWhatsApp.enter_code)."""
        return self._sim._pair_code(self, phone)

    def __repr__(self) -> str:
        return (
            f"SimLink(tenant_id={self.tenant_id!r}, generation={self.generation}, "
            f"jid={self._jid!r}, state={self._state.value})"
        )


def emit(link: SimLink, event: LinkEvent, touched: Touched) -> None:
    """Queue ``event`` on ``link`` (lock held); :func:`deliver` runs it after the lock."""
    link._outbox.append(event)
    touched[link] = None


def deliver(lock: threading.Lock, links: Iterable[SimLink]) -> None:
    """Run the queued callbacks of ``links`` outside ``lock``, in order, one at a time.

    A link's events are delivered by one thread at a time: a thread that finds another
    delivering for the link leaves its events to that thread, which drains the queue. A
    failing callback is logged and the next event still goes out.
    """
    for link in links:
        with lock:
            if link._delivering or not link._outbox:
                continue
            link._delivering = True
            event = link._outbox.pop(0)
        try:
            while True:
                try:
                    link._on_event(event)
                except Exception:
                    logger.exception(
                        "on_event of tenant {} (generation {}) failed on {!r}",
                        link.tenant_id,
                        link.generation,
                        event,
                    )
                with lock:
                    if not link._outbox:
                        link._delivering = False
                        break
                    event = link._outbox.pop(0)
        except BaseException:  # KeyboardInterrupt and the like: let the next caller deliver
            with lock:
                link._delivering = False
            raise
