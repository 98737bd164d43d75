"""What subscribers of a manager receive (the dispatcher in
:mod:`wamgr.workers.dispatcher` hands it to them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from wamgr.status import TenantState, TenantStatus


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """A tenant changed state; ``old_state`` is None the first time this process saw it."""

    tenant_id: str
    old_state: TenantState | None
    status: TenantStatus


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A text message received by a tenant (each message id is delivered once)."""

    tenant_id: str
    message_id: str
    sender: str
    #: Left out of repr, so a log line that shows the event never shows the message.
    text: str = field(repr=False)


ManagerEvent = StatusEvent | InboundMessage
Subscriber = Callable[[ManagerEvent], None]
