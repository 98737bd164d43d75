"""The wire format of links hosted in another process: one JSON object per line.

Spoken between a client (:mod:`wamgr.transport.remote`) and a link server
(:mod:`wamgr.transport.link_server`): a ``wamgr sim`` server over TCP, or a neonize host
process over a socket pair. Client to server: ``open``, ``close``, ``send``, ``pair_code``,
``clear_auth``, ``stats`` (requests that need an answer carry ``req``). Server to client:
link events (``ev``, with the link id) and replies (``reply``, with the request's ``req``,
``ok`` and the answer or ``error``). This module turns link events into lines and back, so
both sides agree by construction.
"""

from __future__ import annotations

import dataclasses
import json
import socket
from typing import Any

from wamgr.transport.base import (
    AckStatus,
    Closed,
    CloseReason,
    Connected,
    InboundKind,
    LinkEvent,
    MediaInfo,
    MessageReceived,
    PairCode,
    Paired,
    Qr,
    Receipt,
    Undecryptable,
)

_EVENT_NAMES: dict[type[LinkEvent], str] = {
    Qr: "qr",
    PairCode: "pair_code",
    Paired: "paired",
    Connected: "connected",
    Closed: "closed",
    MessageReceived: "message",
    Undecryptable: "undecryptable",
    Receipt: "receipt",
}
_EVENT_TYPES = {name: kind for kind, name in _EVENT_NAMES.items()}


def encode_event(link_id: int, event: LinkEvent) -> dict[str, Any]:
    """The wire form of ``event`` of link ``link_id`` (its generation travels with it)."""
    values = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
    if isinstance(event, Closed):
        values["reason"] = str(event.reason)
    if isinstance(event, MessageReceived) and event.media is not None:
        values["media"] = dataclasses.asdict(event.media)
    return {"ev": _EVENT_NAMES[type(event)], "link": link_id, **values}


def decode_event(message: dict[str, Any]) -> LinkEvent:
    """The link event of a wire message made by :func:`encode_event`."""
    kind = _EVENT_TYPES[message["ev"]]
    fields = {k: v for k, v in message.items() if k not in ("ev", "link")}
    if kind is Closed:
        fields["reason"] = CloseReason(fields["reason"])
    elif kind is MessageReceived:
        fields["kind"] = InboundKind(fields.get("kind", "text"))
        if fields.get("media") is not None:
            fields["media"] = MediaInfo(**fields["media"])
    elif kind is Receipt:
        fields["message_ids"] = tuple(fields["message_ids"])
        fields["status"] = AckStatus(fields["status"])
    return kind(**fields)


def send_line(sock: socket.socket, message: dict[str, Any]) -> None:
    """Write ``message`` as one line (the caller serialises writers)."""
    sock.sendall(json.dumps(message, separators=(",", ":")).encode() + b"\n")
