"""The process's one ConnectionManager: started once, stopped on SIGTERM or SIGINT, and the
inbound messages it delivers.

It is stopped from the signal handler, not from ``atexit``: Python waits for every
non-daemon thread (wamgr's are) *before* it runs the ``atexit`` functions, so a manager
left running would keep the process from ever exiting.

Django's views are plain functions on server threads, so the blocking manager fits them:
each call is bounded by its timeout. (Async views would use wamgr.AsyncConnectionManager.)
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

from wamgr import Config, ConnectionManager, InboundMessage
from wamgr.events import ManagerEvent

_lock = threading.Lock()
_manager: ConnectionManager | None = None

#: Messages received, oldest first (a real site stores them in its models).
inbox: list[dict[str, str]] = []


def start() -> ConnectionManager:
    """Start the manager (settings from the environment, as ``wamgr serve``); once."""
    global _manager
    with _lock:
        if _manager is None:
            _manager = ConnectionManager(Config.load()).start()
            _manager.subscribe(_on_event)
            if threading.current_thread() is threading.main_thread():
                for signum in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(signum, _stop_and_exit)
        return _manager


def manager() -> ConnectionManager:
    """The started manager (raises RuntimeError if the app did not start it)."""
    if _manager is None:
        raise RuntimeError("wamgr is not started in this process (WAMGR_AUTOSTART)")
    return _manager


def stop() -> None:
    """Close every link without logout and release the leases."""
    global _manager
    with _lock:
        if _manager is not None:
            _manager.stop()
            _manager = None


def _on_event(event: ManagerEvent) -> None:
    if isinstance(event, InboundMessage):
        inbox.append({"tenant": event.tenant_id, "from": event.sender, "text": event.text})


def _stop_and_exit(signum: int, frame: Any) -> None:
    stop()
    sys.exit(0)
