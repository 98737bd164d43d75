"""The durable outbound queue of one manager: what ``mgr.send`` and the messages routes use.

A message is stored in PostgreSQL (``wamgr_outbound``) and answered at once, whatever its
tenant's state; the instance that holds the tenant's lease sends it once the tenant is
connected, in order, paced (:mod:`wamgr.pacing`), from its
:class:`~wamgr.workers.outbound_sender.OutboundSender`. Any instance can queue for any
tenant: the insert wakes the holder's listener (``NOTIFY wamgr_outbound``), and only the
holder has the tenant connected, so only the holder sends. A periodic pass is the backstop
(a message for a tenant no instance holds waits for the one that takes it over).

States: ``queued`` → ``sending`` → ``sent`` (→ ``delivered`` → ``read``, as receipts come);
or ``failed`` (the tenant logged out, is in conflict, failed or was removed; a file given by
URL could not be fetched), ``expired`` (not sent within ``expires_in``),
``cancelled`` (while queued), ``unknown`` (caught ``sending`` by a crash or a failover: it
may or may not have left, so it is not sent again unless :meth:`OutboundQueue.resend`).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from typing import Any

from wamgr.actors.registry import TenantTable
from wamgr.clock import Clock
from wamgr.config import Config
from wamgr.config_checks import YEAR_S
from wamgr.errors import UnknownTenant
from wamgr.events import ManagerEvent, StatusEvent
from wamgr.message_errors import InvalidMessage, MessageStateConflict, UnknownMessage
from wamgr.metrics import Metrics
from wamgr.pacing import PacingSettings
from wamgr.status import TenantState, validate_recipient, validate_tenant_id, validate_text
from wamgr.store.db import Database
from wamgr.store.outbound import RESENDABLE, OutboundMessage, OutboundStatus, OutboundStore
from wamgr.store.tenant_settings import TenantSettingsStore
from wamgr.transport.media_fetch import MediaFetcher, MediaUrl, check_media_url, url_payload
from wamgr.transport.outgoing import MediaOut, Outgoing, TextOut, check_outgoing, to_payload
from wamgr.workers.outbound_listener import OutboundListener
from wamgr.workers.outbound_sender import OutboundSender

__all__ = ["MediaUrl", "OutboundMessage", "OutboundQueue", "OutboundStatus", "pacing_settings"]

#: Longest idempotency key, in characters.
MAX_IDEMPOTENCY_KEY_CHARS = 255
#: Most messages one listing returns.
MAX_LISTED = 1000


def pacing_settings(config: Config) -> PacingSettings:
    """The pacing a config asks for."""
    return PacingSettings(
        rate_per_min=config.send_rate,
        burst=config.send_burst,
        jitter_s=config.send_jitter_s,
        typing=config.send_typing,
        total_per_min=config.send_rate_total,
    )


class OutboundQueue:
    """Queues, reads, cancels and resends outbound messages; runs this instance's sender.

    Build it with :meth:`start`, end it with :meth:`stop`.
    """

    def __init__(self, store: OutboundStore, clock: Clock, config: Config):
        self.store = store
        self._clock = clock
        self._expires_in_s = config.outbound_expires_in_s
        self.sender: OutboundSender | None = None
        self.listener: OutboundListener | None = None

    @classmethod
    def start(
        cls,
        config: Config,
        clock: Clock,
        db: Database,
        table: TenantTable,
        metrics: Metrics,
        on_events: Callable[[], None] | None,
    ) -> OutboundQueue:
        """Start the sender, then the listener that wakes it (stop them with :meth:`stop`)."""
        queue = cls(OutboundStore(db, config.webhook_urls, config.instance_id), clock, config)
        queue.sender = OutboundSender(
            queue.store,
            table,
            config.instance_id,
            pacing_settings(config),
            clock=clock,
            call_timeout_s=config.call_timeout_s,
            metrics=metrics,
            on_events=on_events,
            fetcher=MediaFetcher(config.media_fetch_timeout_s),
            own_limits=TenantSettingsStore(db).send_limits_of,
        )
        queue.sender.start()
        queue.listener = OutboundListener(
            db, config.instance_id, queue.sender.wake, connect_timeout_s=config.call_timeout_s
        )
        try:
            queue.listener.start()
        except BaseException:
            queue.sender.stop(config.call_timeout_s)
            raise
        return queue

    def stop(self, timeout: float) -> None:
        """Stop the listener, then the sender (its pass under way ends first)."""
        for worker in (self.listener, self.sender):
            if worker is not None:
                worker.stop(timeout)

    def on_event(self, event: ManagerEvent) -> None:
        """A subscriber: wake the sender when a tenant of this instance becomes connected."""
        connected = isinstance(event, StatusEvent) and event.status.state is TenantState.CONNECTED
        if connected and self.sender is not None:
            self.sender.tenant_connected(event.status.tenant_id)

    # --- the application's calls --------------------------------------------------------

    def add(
        self,
        tenant_id: str,
        to: str,
        text: str,
        *,
        idempotency_key: str | None = None,
        expires_in: float | None = None,
    ) -> OutboundMessage:
        """Queue ``text`` for ``to``; returns the message (``queued``, or whatever became of
        the first message queued with the same ``idempotency_key`` for this tenant).

        Raises InvalidTenantId, InvalidRecipient, InvalidMessage (text, key, expiry) or
        UnknownTenant before anything is stored.
        """
        tenant_id = validate_tenant_id(tenant_id)
        payload = {"to": validate_recipient(to), "text": _checked_text(text)}
        return self._queue(tenant_id, "text", payload, idempotency_key, expires_in)

    def add_outgoing(
        self,
        tenant_id: str,
        message: Outgoing | MediaUrl,
        *,
        idempotency_key: str | None = None,
        expires_in: float | None = None,
    ) -> OutboundMessage:
        """Queue any outgoing message (:mod:`wamgr.transport.outgoing`: text, media, reaction,
        read, presence) or a media message whose file is at a URL (:class:`MediaUrl`: the
        sender fetches it). Returns it as :meth:`add` does.

        Raises MediaRefused / MediaTooLarge (what WhatsApp would refuse), InvalidRecipient,
        InvalidMessage or UnknownTenant before anything is stored.
        """
        tenant_id = validate_tenant_id(tenant_id)
        media = None
        if isinstance(message, MediaUrl):
            kind, payload = url_payload(check_media_url(message))
        else:
            if isinstance(message, TextOut):
                _checked_text(message.text)
            checked = check_outgoing(message)
            kind, payload = to_payload(checked)
            if isinstance(checked, MediaOut):  # the file goes in its own column
                media = checked.data
                del payload["data_b64"]
        return self._queue(tenant_id, kind, payload, idempotency_key, expires_in, media)

    def _queue(
        self,
        tenant_id: str,
        kind: str,
        payload: dict[str, Any],
        idempotency_key: str | None,
        expires_in: float | None,
        media: bytes | None = None,
    ) -> OutboundMessage:
        """Store a checked message and wake the sender here (the holder may be this one)."""
        tenant_id = validate_tenant_id(tenant_id)
        key = _checked_key(idempotency_key)
        expires_in_s = self._expires_in_s if expires_in is None else _checked_expiry(expires_in)
        added = self.store.add(
            str(uuid.uuid4()),
            tenant_id,
            payload,
            now=self._clock.time(),
            expires_in_s=expires_in_s,
            idempotency_key=key,
            kind=kind,
            media=media,
        )
        if added is None:
            raise UnknownTenant(tenant_id)
        if self.sender is not None:
            self.sender.wake()  # this instance may hold the tenant: no need to wait for NOTIFY
        return added[0]

    def get(self, tenant_id: str, message_id: str) -> OutboundMessage:
        """The message; UnknownMessage if the tenant has none with that id."""
        tenant_id = validate_tenant_id(tenant_id)
        message = self.store.get(tenant_id, message_id)
        if message is None:
            raise UnknownMessage(tenant_id, message_id)
        return message

    def list(
        self, tenant_id: str, status: str | None = None, limit: int = 100
    ) -> list[OutboundMessage]:
        """The tenant's messages, oldest first (only those in ``status`` if given)."""
        tenant_id = validate_tenant_id(tenant_id)
        try:
            wanted = OutboundStatus(status) if status is not None else None
        except ValueError:
            states = ", ".join(s.value for s in OutboundStatus)
            raise InvalidMessage("status", f"{status!r} is not one of {states}") from None
        if not 1 <= limit <= MAX_LISTED:
            raise InvalidMessage("limit", f"must be from 1 to {MAX_LISTED}, got {limit}")
        return self.store.list(tenant_id, wanted, limit)

    def cancel(self, tenant_id: str, message_id: str) -> OutboundMessage:
        """Cancel a queued message; MessageStateConflict if it is no longer queued."""
        tenant_id = validate_tenant_id(tenant_id)
        cancelled = self.store.cancel(tenant_id, message_id, self._clock.time())
        if cancelled is not None:
            return cancelled
        message = self.get(tenant_id, message_id)
        raise MessageStateConflict(
            tenant_id, message_id, message.status, "a queued message can be cancelled"
        )

    def resend(self, tenant_id: str, message_id: str) -> OutboundMessage:
        """Queue again a message that is unknown, failed, expired or cancelled (it keeps its
        place in the tenant's order); MessageStateConflict in any other state."""
        tenant_id = validate_tenant_id(tenant_id)
        queued = self.store.resend(tenant_id, message_id, self._clock.time())
        if queued is not None:
            if self.sender is not None:
                self.sender.wake()
            return queued
        message = self.get(tenant_id, message_id)
        allowed = " or ".join(sorted(RESENDABLE))
        raise MessageStateConflict(
            tenant_id, message_id, message.status, f"a message {allowed} can be resent"
        )


def _checked_text(text: object) -> str:
    if not isinstance(text, str) or not text:
        raise InvalidMessage("text", "must be a non-empty string")
    try:
        return validate_text(text)
    except ValueError as exc:
        raise InvalidMessage("text", str(exc)) from None


def _checked_key(key: object) -> str | None:
    if key is None:
        return None
    if not isinstance(key, str) or not 0 < len(key) <= MAX_IDEMPOTENCY_KEY_CHARS:
        raise InvalidMessage(
            "idempotency_key", f"must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters"
        )
    if not key.isprintable():
        raise InvalidMessage("idempotency_key", "must not hold control characters")
    return key


def _checked_expiry(expires_in: object) -> float:
    if isinstance(expires_in, bool) or not isinstance(expires_in, int | float):
        raise InvalidMessage("expires_in", "must be a number of seconds")
    if not math.isfinite(expires_in) or not 1.0 <= expires_in <= YEAR_S:
        raise InvalidMessage("expires_in", f"must be from 1 to {YEAR_S:g} seconds")
    return float(expires_in)
