"""What subscribers of a manager receive (the dispatcher in
:mod:`wamgr.workers.dispatcher` hands it to them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from wamgr.status import TenantState, TenantStatus
from wamgr.transport.base import AckStatus, InboundKind, MediaInfo


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """A tenant changed state; ``old_state`` is None the first time this process saw it."""

    tenant_id: str
    old_state: TenantState | None
    status: TenantStatus


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A message of any kind received by a tenant (each message id is delivered once).

    ``text`` is the text, a caption or a reaction's emoji; ``chat`` where it was posted (a
    group's JID when ``is_group``, else the sender's); ``quoted_id`` the message it replies
    or reacts to; ``media`` its mime type, size and SHA-256 (download the bytes separately).
    """

    tenant_id: str
    message_id: str
    sender: str
    #: Left out of repr, so a log line that shows the event never shows the message.
    text: str = field(repr=False)
    kind: InboundKind = InboundKind.TEXT
    chat: str = ""
    is_group: bool = False
    quoted_id: str | None = None
    media: MediaInfo | None = None


@dataclass(frozen=True, slots=True)
class MessageAck:
    """WhatsApp reports messages a tenant sent as ``delivered``, ``read`` or ``played``."""

    tenant_id: str
    message_ids: tuple[str, ...]
    status: AckStatus
    chat: str
    sender: str


ManagerEvent = StatusEvent | InboundMessage | MessageAck
Subscriber = Callable[[ManagerEvent], None]
