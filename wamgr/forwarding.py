"""Forwarded calls: asking the instance that holds a tenant, and carrying its answer back.

:class:`Caller` is the asking side. It registers a waiter for a fresh call id with this
instance's :class:`~wamgr.workers.reply_listener.ReplyListener` (one listening connection for
all calls), writes the call for the live lease holder (:class:`~wamgr.store.calls.CallStore`,
which wakes the holder with NOTIFY), and sleeps on the waiter's event until the reply's
NOTIFY sets it or the call's deadline passes. No polling: the event is set by a notification,
or by the listener when its connection comes back (a reply may have come meanwhile).

What a holder answers is a :func:`reply_of` dict: ``{"ok": value}``, or ``{"error": class
name, "message": ..., "fields": {...}}`` that :func:`error_of` turns back into the SAME named
exception (``NotConnected``, ``NotPairing``, ``UnknownTenant``...), so a caller cannot tell a
forwarded call from a local one except by its latency. A holder that does not answer within
the deadline: :class:`~wamgr.errors.HolderNotAnswering`, naming it.
"""

from __future__ import annotations

import contextlib
import enum
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from loguru import logger

from wamgr import errors
from wamgr.errors import HolderNotAnswering, ManagerStopped, WamgrError
from wamgr.local_tenants import Deadline
from wamgr.status import TenantState, TenantStatus
from wamgr.store.calls import CallStore
from wamgr.store.db import Database
from wamgr.workers.reply_listener import ReplyListener


class CallKind(enum.StrEnum):
    """What can be asked of the instance that holds a tenant, with a reply."""

    SEND_TEXT = "send_text"  # args: to, text; replies with the message id
    QR = "qr"  # replies with the QR code shown while pairing, or None
    PAIR_CODE = "pair_code"  # args: phone; replies with the code
    CLEAR_AUTH = "clear_auth"  # replies with the tenant's status (JSON)


@dataclass(frozen=True, slots=True)
class Forwarded:
    """The answer of the holder to a forwarded call."""

    holder: str
    value: Any


# --- replies: values and named errors as JSON ---------------------------------------------


def reply_of(value: Any = None, error: BaseException | None = None) -> dict[str, Any]:
    """The JSON reply for ``value``, or for ``error``: a WamgrError keeps its class name,
    message and JSON-ready fields; anything else is reported as a WamgrError naming it."""
    if error is None:
        return {"ok": value.to_json() if isinstance(value, TenantStatus) else value}
    if isinstance(error, WamgrError):
        fields = {k: v for k, v in vars(error).items() if _json_ready(v)}
        return {"error": type(error).__name__, "message": str(error), "fields": fields}
    return {
        "error": "WamgrError",
        "message": f"the holder failed: {type(error).__name__}: {error}",
        "fields": {},
    }


def error_of(reply: dict[str, Any]) -> WamgrError:
    """The exception a reply carries, of the class it names (WamgrError if unknown here),
    with the holder's message and fields."""
    kind = getattr(errors, str(reply.get("error")), None)
    if not (isinstance(kind, type) and issubclass(kind, WamgrError)):
        kind = WamgrError
    exc = kind.__new__(kind)
    Exception.__init__(exc, str(reply.get("message") or kind.__name__))
    exc.__dict__.update(reply.get("fields") or {})
    return exc


def status_of(value: dict[str, Any]) -> TenantStatus:
    """A TenantStatus from its ``to_json()`` form."""
    fields = dict(value)
    fields["state"] = TenantState(fields["state"])
    for key in ("next_retry_at", "updated_at"):
        if fields.get(key) is not None:
            fields[key] = datetime.fromisoformat(fields[key])
    return TenantStatus(**fields)


def _json_ready(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


# --- the asking side ------------------------------------------------------------------------


class Caller:
    """Forwards calls about tenants held by other instances and waits for their replies."""

    def __init__(self, store: CallStore, replies: ReplyListener, sender: str):
        self._store = store
        self._replies = replies
        self._me = sender

    def call(
        self, tenant_id: str, kind: CallKind, args: dict[str, Any], deadline: Deadline
    ) -> Forwarded | None:
        """Run ``kind`` on the live holder of the tenant, if that is another instance.

        Returns its answer, or None when there is no other live holder (the call is this
        instance's to run). Raises the named error the holder answered with, or
        HolderNotAnswering (naming it) if no reply came before ``deadline``.
        """
        call_id = str(uuid.uuid4())
        end = time.monotonic() + deadline.left()
        event = self._replies.expect(call_id)  # before the send: a fast reply is not missed
        try:
            holder = self._store.send(
                call_id, tenant_id, str(kind), args, sender=self._me, timeout_s=deadline.left()
            )
            if holder is None:
                return None
            logger.bind(tenant=tenant_id).debug("{} forwarded to {}", kind, holder)
            reply = self._wait(call_id, event, end)
            if reply is None:
                reply = self._store.abandon(call_id)  # a last look; the row goes either way
            if reply is None:
                raise HolderNotAnswering(tenant_id, holder, deadline.what, deadline.timeout)
        finally:
            self._replies.forget(call_id)
        if "error" in reply:
            raise error_of(reply)
        value = reply.get("ok")
        if kind is CallKind.CLEAR_AUTH and value is not None:
            value = status_of(value)
        return Forwarded(holder, value)

    def _wait(self, call_id: str, event: threading.Event, end: float) -> dict[str, Any] | None:
        """Sleep until the reply's notification (or the listener's return) sets ``event``,
        then collect the reply; None if none came before ``end``."""
        while (left := end - time.monotonic()) > 0:
            if not event.wait(left):
                return None
            event.clear()
            reply = self._store.collect(call_id)
            if reply is not None:
                return reply
            if self._replies.stopping:
                raise ManagerStopped()
        return None


#: Seconds a standalone caller's reply listener gets to end.
STANDALONE_STOP_S = 5.0


@contextlib.contextmanager
def standalone_caller(db: Database, sender: str) -> Iterator[Caller]:
    """A Caller for a process that runs no manager (a CLI command), with a reply listener
    of its own for as long as the ``with`` block lasts."""
    store = CallStore(db)
    replies = ReplyListener(store, db.url)
    replies.start()
    try:
        yield Caller(store, replies, sender)
    finally:
        replies.stop(STANDALONE_STOP_S)
