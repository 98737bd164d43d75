"""What a tenant's actor tells its supervisor when a link failed or dropped: the cause (with
what the lease says of a replacement), and the attempt, uptime and ban the policy decides on.

A mixin of :class:`~wamgr.actors.tenant.TenantActor`; its decision comes back as
``ApplyDecision``, and until then the tenant awaits it (no link opens meanwhile).
"""

from __future__ import annotations

from typing import Any

import pykka

from wamgr.actors import messages as m
from wamgr.actors.close_cause import reported_cause
from wamgr.transport.base import Closed, CloseReason


class TenantReporting:
    """Reports of failed links to the supervisor (state is the actor's)."""

    _id: str
    _generation: int
    _awaiting: int | None
    _book: Any
    _lease: Any
    _log: Any
    _svc: Any
    actor_ref: pykka.ActorRef

    def _report_close(self, cause: CloseReason, event: Closed, uptime: float, why: str) -> None:
        """A close nobody asked for (or one closed for a failure, ``why``): to the supervisor."""
        cause, detail = reported_cause(cause, why or event.detail, self._lease.judge_replacement)
        self._log.warning("link closed: {} {}", cause, detail)
        self._report_failure(
            cause, detail, uptime_s=uptime, ban_expires_in_s=event.ban_expires_in_s
        )

    def _report_failure(
        self,
        reason: CloseReason,
        detail: str,
        *,
        uptime_s: float = 0.0,
        ban_expires_in_s: float | None = None,
    ) -> None:
        """Hand a failed or dropped link to the supervisor; its decision comes back later."""
        self._awaiting = self._generation
        self._book.publish(active=False)
        self._svc.supervisor.tell(
            m.LinkClosed(
                tenant_id=self._id,
                tenant=self.actor_ref,
                generation=self._generation,
                reason=reason,
                detail=detail,
                uptime_s=uptime_s,
                attempt=self._book.attempt,
                ban_expires_in_s=ban_expires_in_s,
            )
        )
