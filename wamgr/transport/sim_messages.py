"""The simulator's message surface: everything a link sends is recorded, every kind of
inbound message can be delivered (media kept for download), receipts and proxies.

:class:`SimMessages` adds to :class:`~wamgr.transport.sim_core.SimCore` what a test uses to
check the message surface without WhatsApp: :meth:`~SimMessages.outgoing` (what each account
sent, of any kind), :meth:`~SimMessages.deliver_message` (an inbound message of any kind, its
media's size and SHA-256 computed as WhatsApp would send them),
:meth:`~SimMessages.receipt` (delivered/read/played), and :meth:`~SimMessages.dial_proxies`
/ :meth:`~SimMessages.refuse_proxy` (the proxy each dial used; a proxy that refuses).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from urllib.parse import urlsplit

from wamgr.transport.base import AckStatus, InboundKind, MediaInfo, MessageReceived, Receipt
from wamgr.transport.outgoing import Outgoing, PresenceOut, ReadOut, TextOut
from wamgr.transport.sim_core import SimCore
from wamgr.transport.sim_link import LinkState, SimLink, SimNotConnected

DEFAULT_PEER = "15550009999@s.whatsapp.net"


@dataclass(frozen=True, slots=True)
class SentRecord:
    """One message a link of an account sent: its id (None for read/presence) and itself."""

    message_id: str | None
    message: Outgoing
    tenant_id: str


class SimMessages(SimCore):
    """Message-surface state and verbs of the simulator (see the module docstring)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._outgoing: dict[str, list[SentRecord]] = {}  # jid -> sent, oldest first
        self._media: dict[tuple[str, str], tuple[bytes, str]] = {}  # (jid, id) -> media

    # --- link operations (called by SimLink) ------------------------------------------

    def _send(self, link: SimLink, message: Outgoing) -> str | None:
        with self._lock:
            account = self._devices.get(link._socket.jid) if link._socket is not None else None
            if link._state is not LinkState.CONNECTED or account is None:
                raise SimNotConnected(
                    f"cannot send: link of tenant {link.tenant_id!r} (generation "
                    f"{link.generation}) is {link._state.value}, not connected"
                )
            silent = isinstance(message, ReadOut | PresenceOut)
            message_id = None if silent else self._new_message_id()
            self._outgoing.setdefault(account.jid, []).append(
                SentRecord(message_id, message, link.tenant_id)
            )
            if isinstance(message, TextOut) and message_id is not None:
                account.sent.append((message.to, message.text, message_id))
            if isinstance(message, PresenceOut):
                account.activity.append(("presence", message.to, str(message.presence)))
            elif message_id is not None:
                account.activity.append(("message", getattr(message, "to", None), message_id))
            return message_id

    def _download(self, link: SimLink, message_id: str) -> tuple[bytes, str]:
        with self._lock:
            jid = link._socket.jid if link._socket is not None else link._jid
            media = self._media.get((jid or "", message_id))
        if media is None:
            raise LookupError(f"no media of message {message_id} on this account")
        return media

    # --- verbs for tests ----------------------------------------------------------------

    def deliver_message(
        self,
        jid: str,
        kind: InboundKind | str = InboundKind.TEXT,
        *,
        sender: str = DEFAULT_PEER,
        text: str = "",
        chat: str | None = None,
        quoted_id: str | None = None,
        media: bytes | None = None,
        mime: str = "application/octet-stream",
        filename: str | None = None,
        voice: bool = False,
        message_id: str | None = None,
    ) -> str:
        """Deliver an inbound message of ``kind`` from ``sender`` to the open socket of
        ``jid``; returns its id. ``chat`` is a group's JID (``...@g.us``) or, by default,
        the sender's (a direct chat). ``media`` bytes are kept for download, their size and
        SHA-256 reported. Raises SimNotConnected when no socket is open for ``jid``."""
        kind = InboundKind(kind)
        chat = chat or sender
        info = None
        if media is not None:
            info = MediaInfo(mime, len(media), hashlib.sha256(media).hexdigest(), filename, voice)

        def build(generation: int, mid: str) -> MessageReceived:
            if media is not None:
                self._media[(jid, mid)] = (media, mime)  # under the simulator's lock
            return MessageReceived(
                generation,
                mid,
                sender,
                text,
                kind=kind,
                chat=chat,
                is_group=chat.endswith("@g.us"),
                quoted_id=quoted_id,
                media=info,
            )

        return self._push(jid, message_id, build)

    def receipt(
        self,
        jid: str,
        message_ids: list[str] | tuple[str, ...],
        status: AckStatus | str = AckStatus.DELIVERED,
        sender: str = DEFAULT_PEER,
        chat: str | None = None,
    ) -> None:
        """Report to the open socket of ``jid`` that ``sender`` got (or read, played) the
        messages ``message_ids``. Raises SimNotConnected when no socket is open for ``jid``."""
        ack = AckStatus(status)
        ids = tuple(message_ids)
        if not ids:
            raise ValueError("a receipt names at least one message")
        self._push(jid, ids[0], lambda gen, _mid: Receipt(gen, ids, chat or sender, sender, ack))

    def outgoing(self, jid: str) -> list[SentRecord]:
        """Everything links of ``jid`` sent (every kind), oldest first."""
        with self._lock:
            return list(self._outgoing.get(jid, ()))

    def dial_proxies(self, tenant_id: str) -> list[str | None]:
        """The proxy each dial of ``tenant_id`` used (None: direct), oldest first."""
        with self._lock:
            return list(self._proxies.get(tenant_id, ()))

    def refuse_proxy(self, proxy: str) -> None:
        """Make the proxy at ``proxy``'s host and port refuse: dials through it fail."""
        parts = urlsplit(proxy)
        with self._lock:
            self._bad_proxies.add(f"{parts.hostname}:{parts.port}")


__all__ = ["DEFAULT_PEER", "SentRecord", "SimMessages", "SimNotConnected"]
