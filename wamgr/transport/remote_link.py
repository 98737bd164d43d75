"""RemoteLink: a link whose socket lives in a link server, reached through a LinkChannel.

It keeps the promises of :class:`~wamgr.transport.base.Link`: ``open`` and ``close`` do not
wait for the server, may be called from any thread (the lease keeper fences links from its
own), and exactly one ``Closed`` is reported. A ``close`` that comes before ``open`` has
attached the link to its channel wins: nothing is sent to the server then.
"""

from __future__ import annotations

import base64
import itertools
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wamgr.transport.base import Closed, CloseReason, EventCallback
from wamgr.transport.outgoing import Outgoing, to_payload

if TYPE_CHECKING:
    from wamgr.transport.remote import LinkChannel

# Link ids are unique in the process, so a link keeps its id whichever channel carries it.
_link_ids = itertools.count(1)


class RemoteRefused(RuntimeError):
    """The link server answered a request with an error (its text is the message)."""


class RemoteLink:
    """A link whose socket lives in a link server; its channel is chosen when it opens.

    ``dial(link)`` returns the channel to open on (connecting or starting a server as
    needed) or raises OSError; ``unreachable`` prefixes the detail of the
    ``Closed(DIAL_FAILED)`` then.
    """

    def __init__(
        self,
        dial: Callable[[RemoteLink], LinkChannel],
        tenant_id: str,
        jid: str | None,
        generation: int,
        on_event: EventCallback,
        unreachable: str,
        proxy: str | None = None,
    ):
        self.link_id = next(_link_ids)
        self.generation = generation
        self.tenant_id = tenant_id
        self._dial = dial
        self._jid = jid
        self._on_event = on_event
        self._unreachable = unreachable
        self._proxy = proxy
        self._lock = threading.Lock()
        self._channel: LinkChannel | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        """True once ``Closed`` was reported."""
        return self._closed

    def open(self) -> None:
        """Ask the server to dial; an unreachable server reports ``Closed(DIAL_FAILED)``."""
        message = {
            "op": "open",
            "link": self.link_id,
            "tenant": self.tenant_id,
            "jid": self._jid,
            "generation": self.generation,
            "proxy": self._proxy,
        }
        try:
            channel = self._dial(self)
            with self._lock:  # a close() that came first wins: nothing is sent then
                if self._closed:
                    channel.detach(self.link_id)
                    return
                self._channel = channel
                channel.attach(self, message)  # queued before any close of this link
        except OSError as exc:
            with self._lock:
                channel, self._channel = self._channel, None
            if channel is not None:
                channel.detach(self.link_id)
            self.report(
                Closed(self.generation, CloseReason.DIAL_FAILED, f"{self._unreachable}: {exc}")
            )

    def close(self, do_logout: bool) -> None:
        """Ask the server to close (and maybe log out); a dead connection closes at once.

        Non-blocking and safe from any thread (the lease keeper fences links from its own).
        """
        with self._lock:
            if self._closed:
                return
            channel = self._channel
            if channel is None:
                self._closed = True  # open(), if it runs later, sends nothing
        if channel is None:
            self._on_event(
                Closed(self.generation, CloseReason.REQUESTED, "closed before it opened")
            )
            return
        try:
            channel.send({"op": "close", "link": self.link_id, "logout": do_logout})
        except OSError:
            channel.detach(self.link_id)
            self.report(Closed(self.generation, CloseReason.REQUESTED, "connection lost"))

    def send_text(self, to: str, text: str) -> str:
        """Send through the server; raises RemoteRefused if the socket is not connected."""
        reply = self._ask({"op": "send", "link": self.link_id, "to": to, "text": text})
        return str(reply["message_id"])

    def send(self, message: Outgoing) -> str | None:
        """Send any outgoing message through the server (as the queue stores it)."""
        kind, payload = to_payload(message)
        reply = self._ask(
            {"op": "send_out", "link": self.link_id, "kind": kind, "payload": payload}
        )
        message_id = reply.get("message_id")
        return None if message_id is None else str(message_id)

    def download_media(self, message_id: str) -> tuple[bytes, str]:
        """The media of inbound ``message_id`` from the server's link; LookupError if none."""
        try:
            reply = self._ask({"op": "download", "link": self.link_id, "message_id": message_id})
        except RemoteRefused as exc:
            raise LookupError(str(exc)) from exc
        return base64.b64decode(reply["data_b64"]), str(reply["mime"])

    def request_pair_code(self, phone: str) -> str:
        """A pair code for ``phone`` from the pairing socket; raises RemoteRefused if it is not
        pairing."""
        reply = self._ask({"op": "pair_code", "link": self.link_id, "phone": phone})
        return str(reply["code"])

    def _ask(self, message: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            channel = self._channel
        if channel is None or self._closed:
            raise RemoteRefused("the link is not open")
        try:
            reply = channel.ask(message)
        except OSError as exc:
            raise RemoteRefused(f"{message['op']} failed: {exc}") from exc
        if not reply.get("ok"):
            raise RemoteRefused(f"{message['op']} failed: {reply.get('error')}")
        return reply

    def deliver(self, event: Any) -> None:
        """Hand an event other than ``Closed`` to the tenant (dropped once closed)."""
        if not self._closed:
            self._on_event(event)

    def report(self, event: Closed) -> None:
        """Report the one ``Closed`` of this link (no-op if already closed)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._on_event(event)

    def __repr__(self) -> str:
        return (
            f"RemoteLink(tenant_id={self.tenant_id!r}, generation={self.generation}, "
            f"id={self.link_id}, closed={self._closed})"
        )
