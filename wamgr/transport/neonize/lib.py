"""Loading neonize: what has to happen before, around and right after ``import neonize``.

Only neonize host processes (and tests) import this module; the wamgr process that runs
the manager never loads neonize's Go core.

- ``NEONIZE_BOT_TAG=off`` is set before the Go library loads, so 1:1 messages do not carry
  a ``<bot biz_bot="1"/>`` node.
- ``import neonize`` calls ``logging.basicConfig(level=INFO)`` and reads ``uname -a`` through
  pipes it never closes (ResourceWarnings): the root logger is left as it was, and the
  command runs through ``subprocess.run`` instead.
- neonize's worker thread (the one that runs the blocking ``Neonize`` call) is made a
  daemon thread: a client whose Go call never returns (an abandoned pairing) must not keep
  the process from exiting.
- whatsmeow's own logs are kept at WARNING (they reach loguru through wamgr's intercept).
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import threading
import warnings
from collections.abc import Callable
from typing import Any

os.environ.setdefault("NEONIZE_BOT_TAG", "off")


class DaemonThread(threading.Thread):
    """``threading.Thread`` that is always a daemon (neonize asks for ``daemon=False``)."""

    def __init__(self, *args: Any, daemon: bool | None = None, **kwargs: Any):
        super().__init__(*args, daemon=True, **kwargs)


def _read_command(command: str, mode: str = "r", buffering: int = -1) -> io.StringIO:
    """``os.popen`` for neonize's import, which reads ``uname -a`` and never closes the pipe
    (a ResourceWarning whenever the garbage collector gets to it)."""
    result = subprocess.run(command, shell=True, capture_output=True, text=True, check=False)
    return io.StringIO(result.stdout)


def _load() -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    popen = os.popen
    os.popen = _read_command  # type: ignore[assignment]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import neonize.client
            import neonize.events
    finally:
        os.popen = popen
        root.handlers[:] = handlers
        root.setLevel(level)
    neonize.client.Thread = DaemonThread  # type: ignore[misc]  # client.py: `from threading import Thread`
    for name in ("neonize", "whatsmeow", "Whatsmeow"):
        logging.getLogger(name).setLevel(logging.WARNING)


_load()

# Re-exported so the rest of wamgr names neonize in one place (and loads it through here).
import neonize.events as neonize_events  # noqa: E402
from neonize._binder import ProxySettings  # noqa: E402
from neonize.client import NewClient  # noqa: E402
from neonize.events import EVENT_TO_INT  # noqa: E402
from neonize.exc import NeonizeError  # noqa: E402
from neonize.proto.Neonize_pb2 import JID, ConnectFailureReason  # noqa: E402
from neonize.proto.waCompanionReg.WACompanionReg_pb2 import DeviceProps  # noqa: E402
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import ContextInfo, ExtendedTextMessage  # noqa: E402
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message as E2EMessage  # noqa: E402
from neonize.utils.enum import (  # noqa: E402
    ChatPresence,
    ChatPresenceMedia,
    ClientName,
    Presence,
    ReceiptType,
)
from neonize.utils.message import extract_text  # noqa: E402

__all__ = [
    "DEVICE_PROPS",
    "EVENT_TO_INT",
    "JID",
    "ChatPresence",
    "ChatPresenceMedia",
    "ClientFactory",
    "ClientName",
    "ConnectFailureReason",
    "ContextInfo",
    "DaemonThread",
    "DeviceProps",
    "E2EMessage",
    "ExtendedTextMessage",
    "NeonizeError",
    "NewClient",
    "Presence",
    "ProxySettings",
    "ReceiptType",
    "extract_text",
    "make_client",
    "neonize_events",
]

#: What a link shows on the phone's *Linked devices* screen.
DEVICE_PROPS = DeviceProps(os="wamgr", platformType=DeviceProps.CHROME)

#: Builds a link's client: (store URL, map key, new device) -> client.
ClientFactory = Callable[[str, str, bool], Any]


def make_client(store_url: str, uuid: str, new_device: bool) -> NewClient:
    """A neonize client on store ``store_url`` with map key ``uuid`` (no Go call yet)."""
    client = NewClient(store_url, uuid=uuid, new_device=new_device, props=DEVICE_PROPS)
    client._stop_finalizer.detach()  # GC must never call Stop() unserialised
    return client
