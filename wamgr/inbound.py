"""An inbound message on its way to the application: dedup, outbox row, subscribers.

A tenant's actor hands every message its link receives to :meth:`InboundPipeline.submit`,
which only queues it: the database write that decides whether the message is new runs on
the pipeline's own thread, so a slow or stalled database never holds a tenant's actor (and
the lease fence queued behind it). Messages leave in the order they came, one at a time.

For each message, ONE statement records its id (``wamgr_inbound``) and its outbox rows (for
the global endpoints and the tenant's own), so of any number of deliveries of one message,
in any number of processes, exactly one goes on. If the id cannot be recorded the message is
delivered anyway: a possible duplicate is better than a lost customer message. A receipt (delivered,
read, played) becomes a ``message.ack`` event the same way, without dedup, and moves the
outbound messages it names (by WhatsApp's id) to ``delivered`` or ``read``.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Sequence

from loguru import logger

from wamgr.errors import WamgrError
from wamgr.events import InboundMessage, ManagerEvent, MessageAck
from wamgr.store.outbound import OutboundStatus, OutboundStore
from wamgr.store.outbox import Outbox
from wamgr.transport.base import AckStatus, MessageReceived, Receipt
from wamgr.webhooks.events import ack_event, message_event
from wamgr.workers.base import Worker


class InboundPipeline(Worker):
    """A worker that records inbound messages once and hands new ones on."""

    what = "inbound message"

    def __init__(
        self,
        outbox: Outbox,
        endpoints: Sequence[str],
        publish: Callable[[ManagerEvent], None],
        on_outbox_rows: Callable[[], None] | None = None,
        name: str = "wamgr-inbound",
        outbound: OutboundStore | None = None,
    ):
        super().__init__(name)
        self._outbox = outbox
        self._endpoints = list(endpoints)
        self._publish = publish
        self._on_outbox_rows = on_outbox_rows
        self._outbound = outbound  # receipts move its sent messages to delivered / read
        self._queue: queue.SimpleQueue[tuple[str, MessageReceived | Receipt]] = queue.SimpleQueue()

    def submit(self, tenant_id: str, message: MessageReceived | Receipt) -> None:
        """Queue a message (or a receipt) a tenant's link received; never blocks."""
        self._queue.put((tenant_id, message))
        self.wake()

    def iterate(self) -> None:
        """Handle everything queued, in order; then wait to be woken by :meth:`submit`."""
        self._handle_queued()

    def on_stop(self) -> None:
        """Handle what was queued before the stop (the tenants' links are closed by then)."""
        self._handle_queued()

    def handle(self, tenant_id: str, message: MessageReceived | Receipt) -> None:
        """Record one message and, if it is new, publish it to the subscribers; a receipt
        becomes a ``message.ack`` webhook event and a MessageAck for subscribers."""
        if isinstance(message, Receipt):
            self._acknowledge(tenant_id, message)
            return
        if not self._first_delivery(tenant_id, message):
            logger.bind(tenant=tenant_id).debug(
                "dropped a redelivery of message {}", message.message_id
            )
            return
        self._publish(
            InboundMessage(
                tenant_id,
                message.message_id,
                message.sender,
                message.text,
                kind=message.kind,
                chat=message.chat or message.sender,
                is_group=message.is_group,
                quoted_id=message.quoted_id,
                media=message.media,
            )
        )

    def _acknowledge(self, tenant_id: str, receipt: Receipt) -> None:
        self._advance_outbound(tenant_id, receipt)
        try:
            if self._outbox.record_events([ack_event(tenant_id, receipt)], self._endpoints):
                self._wake_sender()
        except WamgrError as exc:
            logger.bind(tenant=tenant_id).warning(
                "could not record a receipt ({}); its webhook event is lost",
                exc.format_message(),
            )
        self._publish(
            MessageAck(tenant_id, receipt.message_ids, receipt.status, receipt.chat, receipt.sender)
        )

    def _advance_outbound(self, tenant_id: str, receipt: Receipt) -> None:
        """Move the tenant's outbound messages the receipt names (by WhatsApp's id) to
        ``delivered`` or ``read`` (a ``played`` receipt reads too)."""
        if self._outbound is None:
            return
        status = OutboundStatus.DELIVERED
        if receipt.status is not AckStatus.DELIVERED:
            status = OutboundStatus.READ
        try:
            moved = self._outbound.acknowledge(tenant_id, receipt.message_ids, status)
        except WamgrError as exc:
            logger.bind(tenant=tenant_id).warning(
                "could not record a {} receipt on the outbound queue ({})",
                receipt.status,
                exc.format_message(),
            )
            return
        for message in moved:
            logger.bind(tenant=tenant_id).debug("message {} {}", message.message_id, status)

    def _wake_sender(self) -> None:
        if self._on_outbox_rows is not None:
            self._on_outbox_rows()

    def _first_delivery(self, tenant_id: str, message: MessageReceived) -> bool:
        try:
            # Always through the outbox: the tenant may have its own endpoints.
            event = message_event(tenant_id, message)
            new = self._outbox.record_inbound(tenant_id, message.message_id, event, self._endpoints)
            if new:
                self._wake_sender()
            return new
        except WamgrError as exc:
            logger.bind(tenant=tenant_id).warning(
                "could not record inbound message {} ({}); delivering it, it may be a duplicate",
                message.message_id,
                exc.format_message(),
            )
            return True

    def _handle_queued(self) -> None:
        while True:
            try:
                tenant_id, message = self._queue.get_nowait()
            except queue.Empty:
                return
            try:
                self.handle(tenant_id, message)
            except Exception:
                logger.bind(tenant=tenant_id).exception(
                    "inbound message {} could not be handled", message.message_id
                )
