"""A tenant's side of its lease: take it before a link opens, give it up, judge a 440.

Used by :class:`~wamgr.actors.tenant.TenantActor` on its own thread. Every statement here is
bounded by the session's statement and lock timeouts (below the fence; see
:class:`~wamgr.store.db.SessionLimits`).

A grant is good only until ``renew_deadline`` after the moment its statement was *sent*
(measured on the monotonic clock): the database computed the expiry from its ``now()``, the
start of the statement, so a grant whose answer took longer may already have expired and
been taken over. Such a late grant is let go (it expires by itself) before any link opens.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pykka
from loguru import logger

from wamgr.actors.fence import LinkFence
from wamgr.actors.leases import LeaseDropped, LeaseGranted
from wamgr.actors.messages import Claimed
from wamgr.clock import Clock
from wamgr.config import Config
from wamgr.errors import DatabaseUnavailable
from wamgr.store.leases import LeaseStore
from wamgr.transport.base import Link

if TYPE_CHECKING:
    from loguru import Logger


class Outcome(enum.Enum):
    """How an attempt to take the lease ended."""

    GRANTED = "granted"  # ours, in time: the link may open
    HELD_ELSEWHERE = "held_elsewhere"  # another instance holds it: stand by
    LATE = "late"  # granted, but the answer came after renew_deadline: stand by
    UNAVAILABLE = "unavailable"  # the database did not answer: a failed dial, back off


@dataclass(frozen=True, slots=True)
class Take:
    """The result of :meth:`TenantLease.take`; ``owner`` is the holder when held elsewhere."""

    outcome: Outcome
    owner: str | None = None
    detail: str = ""


class Replacement(enum.Enum):
    """Who replaced our socket (440 conflict), as far as the lease can tell."""

    SUCCESSOR = "successor"  # another instance holds the lease now: stand by
    PREDECESSOR = "predecessor"  # the instance we just took over from: reconnect
    ROGUE = "rogue"  # a client outside wamgr (we hold the lease): conflict


class TenantLease:
    """The lease token a tenant holds (if any), with its fence and where it came from."""

    __slots__ = (
        "_clock",
        "_config",
        "_fence",
        "_id",
        "_keeper",
        "_leases",
        "_sent_at",
        "_taken_from",
        "_token",
    )

    def __init__(
        self,
        tenant_id: str,
        config: Config,
        clock: Clock,
        leases: LeaseStore,
        keeper: pykka.ActorRef,
    ):
        self._id = tenant_id
        self._config = config
        self._clock = clock
        self._leases = leases
        self._keeper = keeper
        self._token: int | None = None
        self._fence: LinkFence | None = None
        self._sent_at = 0.0  # when the acquire of the current grant was sent
        self._taken_from: str | None = None  # the other owner whose expired lease we took

    @property
    def _log(self) -> Logger:  # bound when it logs: a bound logger per tenant costs ~400 bytes
        return logger.bind(tenant=self._id)

    @property
    def token(self) -> int | None:
        """The token of the lease held, or None."""
        return self._token

    @property
    def fenced(self) -> bool:
        """Whether the keeper fenced the current grant (it closed its link)."""
        return self._fence is not None and self._fence.tripped

    def take(self, tenant: pykka.ActorRef, claimed: Claimed | None = None) -> Take:
        """(Re)take the lease right before a link opens; on GRANTED, the keeper renews it.

        Taking it again although we hold it costs one statement and proves, at the moment it
        matters, that no other instance took it over meanwhile (say, while we were paused).
        With ``claimed`` deciding the lease (a claim pass's batch grant, or the holder it
        found), no statement is made: its grant is judged from the moment the batch's
        statement was sent, by the same rules.
        """
        cfg = self._config
        if claimed is not None and claimed.decided:
            sent_at, grant, owner = claimed.sent_at, claimed.grant, claimed.held_by
        else:
            sent_at = self._clock.monotonic()
            try:
                grant = self._leases.take(self._id, cfg.instance_id, cfg.lease_ttl_s)
                holder = None if grant is not None else self._leases.holder(self._id)
            except DatabaseUnavailable as exc:
                self._log.warning("cannot take the lease: {}", exc.detail)
                return Take(Outcome.UNAVAILABLE, detail=f"lease check failed: {exc.detail}")
            owner = holder.owner if holder else None
        self.forget()  # the token we held (if any) is replaced, or gone
        if grant is None:
            self._log.info("lease held by {}; standing by", owner)
            return Take(Outcome.HELD_ELSEWHERE, owner=owner, detail=f"lease held by {owner}")
        took = self._clock.monotonic() - sent_at
        if took >= cfg.renew_deadline_s:
            detail = (
                f"the lease grant came {took:.1f} s after it was sent, later than the "
                f"{cfg.renew_deadline_s:g} s deadline: too late to use"
            )
            self._log.warning("{}; standing by (it expires by itself)", detail)
            return Take(Outcome.LATE, detail=detail)
        self._token = grant.token
        self._fence = LinkFence(self._id, grant.token)
        self._sent_at = sent_at
        self._taken_from = grant.previous_owner
        self._keeper.tell(LeaseGranted(self._id, grant.token, tenant, sent_at, self._fence))
        return Take(Outcome.GRANTED)

    def give_back(self, claimed: Claimed | None) -> None:
        """Release the batch grant of ``claimed`` that this tenant will not use (it runs a
        link already, or waits for a retry, or is stopping), so no other instance waits for
        it to expire. Only that grant's token is released: never the lease held now."""
        if claimed is None or claimed.grant is None or claimed.grant.token == self._token:
            return
        try:
            self._leases.release(self._id, claimed.grant.token)
        except DatabaseUnavailable as exc:
            self._log.warning("could not give back an unused grant (it expires): {}", exc.detail)

    def arm(self, link: Link) -> bool:
        """Put ``link`` under the current grant's fence; False if there is no grant or it was
        fenced already (the link must not open)."""
        return self._fence is not None and self._fence.arm(link)

    def lost(self, token: int) -> bool:
        """The keeper says the lease of ``token`` is lost; True if that is the current one
        (which is then forgotten)."""
        if token != self._token:
            return False  # an older grant; the current one is fine
        self._token = None
        return True

    def forget(self) -> None:
        """Stop holding the lease without a statement (the keeper stops renewing it)."""
        token, self._token = self._token, None
        if token is not None:
            self._keeper.tell(LeaseDropped(self._id, token))

    def hand_back(self) -> None:
        """Stop holding the lease, for the manager's stop to release it with the others'
        (see :class:`~wamgr.actors.leases.LeasesReleased`): no statement, no message."""
        self._token = None

    def release(self) -> None:
        """Give the lease up (one statement), so another instance may take it at once."""
        token = self._token
        self.forget()
        if token is None:
            return
        try:
            self._leases.release(self._id, token)
        except DatabaseUnavailable as exc:
            self._log.warning("could not release the lease (it expires by itself): {}", exc.detail)

    def judge_replacement(self) -> Replacement:
        """Who replaced our socket with 440 conflict, from the lease as stored now.

        Another instance holding the lease is our legitimate successor (we were paused past
        it). If we hold it ourselves, having taken it over less than ``lease_ttl`` ago from
        another instance, the socket is that predecessor's, opened late: it fences itself,
        and we reconnect. Otherwise, or if the database cannot tell, it is a client outside
        wamgr: conflict.
        """
        token = self._token
        try:
            holder = self._leases.holder(self._id)
        except DatabaseUnavailable:
            return Replacement.ROGUE  # cannot tell: conflict, which never reconnects by itself
        if holder is None or token is None:
            return Replacement.ROGUE
        if holder.token != token:
            self._log.warning(
                "replaced by {}, which holds the lease now: standing by", holder.owner
            )
            self.forget()
            return Replacement.SUCCESSOR
        since = self._clock.monotonic() - self._sent_at
        if self._taken_from is not None and since < self._config.lease_ttl_s:
            self._log.warning(
                "replaced {:.1f} s after taking the lease over from {}: its late socket, "
                "not a rogue; reconnecting",
                since,
                self._taken_from,
            )
            return Replacement.PREDECESSOR
        return Replacement.ROGUE
