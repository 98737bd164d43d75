"""What a tenant's actor sends through its link, and the media it fetches from it: the
handlers of ``SendText``, ``Send`` (any outgoing kind) and ``DownloadMedia``.

A mixin of :class:`~wamgr.actors.tenant.TenantActor` (its dispatch table names these
handlers); they run on the actor's thread, like every command, and need a link: without one
(or, to send, unless connected) they raise NotConnected naming the state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wamgr.actors import messages as m
from wamgr.errors import MediaUnavailable, NotConnected
from wamgr.status import TenantState

if TYPE_CHECKING:
    from wamgr.transport.base import Link


class TenantSending:
    """Send and download handlers of a tenant actor (state is the actor's)."""

    _id: str
    _link: Link | None
    _book: Any
    _log: Any

    def _on_send_text(self, message: m.SendText) -> str:
        if self._link is None or self._book.state is not TenantState.CONNECTED:
            raise NotConnected(self._id, str(self._book.state))
        message_id = self._link.send_text(message.to, message.text)
        self._log.debug("sent message {} to {}", message_id, message.to)
        return message_id

    def _on_send(self, message: m.Send) -> str | None:
        if self._link is None or self._book.state is not TenantState.CONNECTED:
            raise NotConnected(self._id, str(self._book.state))
        message_id = self._link.send(message.message)
        self._log.debug("sent {} {}", message.message.kind, message_id or "")
        return message_id

    def _on_download_media(self, message: m.DownloadMedia) -> tuple[bytes, str]:
        if self._link is None:
            raise NotConnected(self._id, str(self._book.state))
        try:
            return self._link.download_media(message.message_id)
        except LookupError as exc:
            raise MediaUnavailable(self._id, message.message_id, str(exc)) from None
