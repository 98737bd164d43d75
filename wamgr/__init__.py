"""wamgr: keeps many WhatsApp Web connections alive, one socket per account, always.

Importing it turns wamgr's logs off (see docs/embedding.md, "Logging"). The public names
below are imported on first use, so a process that needs only part of
wamgr (a neonize host process, a CLI command that reads the database) does not load the
manager and its actors.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from loguru import logger as _logger

from wamgr._version import __version__ as __version__

# A library stays quiet until the application asks for its logs (loguru's advice for
# libraries): ``logger.enable("wamgr")``, or ``wamgr.logging.to_stdlib()`` for the standard
# logging module. ``wamgr serve`` and the CLI turn them on (wamgr.logging.configure).
_logger.disable("wamgr")
del _logger

if TYPE_CHECKING:
    from wamgr.aio import AsyncConnectionManager
    from wamgr.config import Config
    from wamgr.errors import (
        ConfigError,
        DatabaseUnavailable,
        HeldElsewhere,
        InstanceIdInUse,
        InvalidDuration,
        InvalidLockKey,
        InvalidMessageId,
        InvalidPhone,
        InvalidRecipient,
        InvalidTenantId,
        JidInUse,
        LockBusy,
        ManagerStopped,
        NotConnected,
        NotPairing,
        OperationTimeout,
        PairingFailed,
        StartCancelled,
        UnknownTenant,
        WamgrError,
    )
    from wamgr.events import InboundMessage, StatusEvent
    from wamgr.manager import ConnectionManager
    from wamgr.status import TenantState, TenantStatus
    from wamgr.store.locks import Claim, ProcessingLocks

#: Public name -> the module that defines it.
_WHERE = {
    "AsyncConnectionManager": "wamgr.aio",
    "Claim": "wamgr.store.locks",
    "Config": "wamgr.config",
    "ConfigError": "wamgr.errors",
    "ConnectionManager": "wamgr.manager",
    "DatabaseUnavailable": "wamgr.errors",
    "HeldElsewhere": "wamgr.errors",
    "InboundMessage": "wamgr.events",
    "InstanceIdInUse": "wamgr.errors",
    "InvalidDuration": "wamgr.errors",
    "InvalidLockKey": "wamgr.errors",
    "InvalidMessageId": "wamgr.errors",
    "InvalidPhone": "wamgr.errors",
    "InvalidRecipient": "wamgr.errors",
    "JidInUse": "wamgr.errors",
    "InvalidTenantId": "wamgr.errors",
    "LockBusy": "wamgr.errors",
    "ManagerStopped": "wamgr.errors",
    "NotConnected": "wamgr.errors",
    "NotPairing": "wamgr.errors",
    "OperationTimeout": "wamgr.errors",
    "PairingFailed": "wamgr.errors",
    "ProcessingLocks": "wamgr.store.locks",
    "StartCancelled": "wamgr.errors",
    "StatusEvent": "wamgr.events",
    "TenantState": "wamgr.status",
    "TenantStatus": "wamgr.status",
    "UnknownTenant": "wamgr.errors",
    "WamgrError": "wamgr.errors",
}

__all__ = [
    "AsyncConnectionManager",
    "Claim",
    "Config",
    "ConfigError",
    "ConnectionManager",
    "DatabaseUnavailable",
    "HeldElsewhere",
    "InboundMessage",
    "InstanceIdInUse",
    "InvalidDuration",
    "InvalidLockKey",
    "InvalidMessageId",
    "InvalidPhone",
    "InvalidRecipient",
    "InvalidTenantId",
    "JidInUse",
    "LockBusy",
    "ManagerStopped",
    "NotConnected",
    "NotPairing",
    "OperationTimeout",
    "PairingFailed",
    "ProcessingLocks",
    "StartCancelled",
    "StatusEvent",
    "TenantState",
    "TenantStatus",
    "UnknownTenant",
    "WamgrError",
]


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use (PEP 562)."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'wamgr' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
