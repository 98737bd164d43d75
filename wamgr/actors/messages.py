"""The messages wamgr's actors exchange.

Commands are *asked* by the facade (the reply is the return value of the handler); events
are *told* between actors and never answered. Every message that concerns a link carries
that link's generation, so the receiver drops it once the link is history.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from wamgr.policy import Decision
from wamgr.status import TenantState, TenantStatus
from wamgr.store.leases import Grant
from wamgr.transport.base import CloseReason

if TYPE_CHECKING:
    import pykka

    from wamgr.transport.outgoing import Outgoing


# --- commands to a tenant (asked by the facade) -------------------------------------------


@dataclass(frozen=True, slots=True)
class Claimed:
    """What a claim pass read and took for one tenant in its batch statements, so that the
    tenant's connect needs no statement of its own.

    ``sent_at`` is the monotonic time the batch's lease statement was *sent*: a ``grant`` is
    judged from then on exactly as a grant the tenant took itself (too late after
    ``renew_deadline``). Without a grant, ``held_by`` names the holder of the unexpired lease;
    with neither, the tenant takes its lease itself. ``jid`` and ``proxy`` are the tenant's
    stored device and proxy setting, read for its first dial.
    """

    sent_at: float
    grant: Grant | None = None
    held_by: str | None = None
    jid: str | None = None
    proxy: str | None = None

    @property
    def decided(self) -> bool:
        """Whether the batch decided the lease (granted, or held elsewhere)."""
        return self.grant is not None or self.held_by is not None


@dataclass(frozen=True, slots=True)
class Connect:
    """Make sure the tenant has a link; opens one only if it has none and none is due.

    ``claimed``: what the claim pass (or ``connect()``'s one statement) prepared for the
    first dial (see :class:`Claimed`); a grant in it that the tenant does not use is given
    back at once. ``manual``: the application's ``connect()``, which also connects a tenant
    parked in conflict, logged_out or failed; a claim pass's connect leaves it parked.
    """

    claimed: Claimed | None = None
    manual: bool = False


@dataclass(frozen=True, slots=True)
class Reconnect:
    """Close the current link (if any) and open a new one once it reported closed."""


@dataclass(frozen=True, slots=True)
class Remove:
    """Stop the tenant: close its link (logging out first if ``do_logout``), give up its lease.

    ``done`` is set once the link is gone (at once if there is none).
    """

    do_logout: bool
    done: threading.Event


@dataclass(frozen=True, slots=True)
class SendText:
    """Send a text message through the connected link; replies with the message id."""

    to: str
    text: str = field(repr=False)  # message text is never logged


@dataclass(frozen=True, slots=True)
class Send:
    """Send any outgoing message (``wamgr.transport.outgoing``, already checked) through the
    connected link; replies with its message id (None for a receipt or presence)."""

    message: Outgoing = field(repr=False)  # may hold text or media: never logged


@dataclass(frozen=True, slots=True)
class DownloadMedia:
    """The bytes and mime type of inbound message ``message_id``'s media, from the link that
    received it; MediaUnavailable if it has none (or forgot it), NotConnected without a link."""

    message_id: str


@dataclass(frozen=True, slots=True)
class ClearAuth:
    """Forget the tenant's device: close its link (no logout), delete its credentials, release
    its lease and park it in ``logged_out`` until a ``connect`` pairs it again.

    ``done`` is set once that is finished.
    """

    done: threading.Event


@dataclass(frozen=True, slots=True)
class RequestPairCode:
    """While pairing, get a code to type on the phone ``phone``; replies with the code."""

    phone: str


@dataclass(frozen=True, slots=True)
class GetStatus:
    """Reply with the tenant's TenantStatus."""


@dataclass(frozen=True, slots=True)
class GetQr:
    """Reply with the QR code shown while pairing, or None."""


# --- events to a tenant (told) -------------------------------------------------------------


class Notice(Protocol):
    """What a tenant sets once the link it was asked to close is gone (a
    :class:`threading.Event`, or anything with ``set``; called on the tenant's thread)."""

    def set(self) -> None:
        """The link is gone."""


@dataclass(frozen=True, slots=True)
class Shutdown:
    """The process is stopping: close the link without logout, then set ``done``.

    The tenant forgets its lease token; the manager releases the leases of every tenant whose
    link closed in one statement (10,000 tenants releasing one by one would drain the pool).
    """

    done: Notice
    #: Then end the actor at once (``PooledActor.stop_now``) once ``done`` is set: a stop of
    #: 10,000 tenants needs no second message, and no future, per tenant.
    stop: bool = False


@dataclass(frozen=True, slots=True)
class ApplyDecision:
    """The supervisor's decision about the link of ``generation`` that closed."""

    generation: int
    decision: Decision
    retry_at: float | None  # epoch seconds of the scheduled reconnect, if any


@dataclass(frozen=True, slots=True)
class RetryDue:
    """The reconnect scheduled after the link of ``generation`` closed is due."""

    generation: int


# --- events to the supervisor (told) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkClosed:
    """A tenant's link closed for a reason that was not wamgr's own request."""

    tenant_id: str
    tenant: pykka.ActorRef
    generation: int
    reason: CloseReason
    detail: str
    uptime_s: float
    attempt: int
    ban_expires_in_s: float | None = None


# --- messages to the registry --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GetOrCreate:
    """Reply with the tenant's actor, starting it if this process has none (asked)."""

    tenant_id: str


@dataclass(frozen=True, slots=True)
class Lookup:
    """Reply with the tenant's actor, or None (asked)."""

    tenant_id: str


@dataclass(frozen=True, slots=True)
class StatusChanged:
    """A tenant's new status; ``active`` says whether its link is connected (told)."""

    status: TenantStatus
    active: bool


@dataclass(frozen=True, slots=True)
class IsActive:
    """Reply whether the tenant's link is connected (asked)."""

    tenant_id: str


@dataclass(frozen=True, slots=True)
class StatusOf:
    """Reply with the tenant's last status in this process, or None (asked)."""

    tenant_id: str


@dataclass(frozen=True, slots=True)
class AllStatuses:
    """Reply with every tenant status this process knows (asked)."""


@dataclass(frozen=True, slots=True)
class AllTenants:
    """Reply with every tenant actor of this process, by tenant id (asked)."""


@dataclass(frozen=True, slots=True)
class BeginShutdown:
    """The process is stopping: create no tenant actor from now on, and reply with every one
    there is, by tenant id (asked). A later GetOrCreate of a new tenant raises ManagerStopped."""


@dataclass(eq=False, slots=True)
class WaitFor:
    """Set ``event`` (and fill ``result``) once the tenant is in one of ``states`` (told)."""

    tenant_id: str
    states: Collection[TenantState]
    event: threading.Event = field(default_factory=threading.Event)
    result: list[TenantStatus] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class CancelWait:
    """Forget a WaitFor whose caller gave up (told)."""

    waiter: WaitFor
