"""wamgr: keeps many WhatsApp Web connections alive, one socket per account, always.

The public names below are imported on first use, so a process that needs only part of
wamgr (a neonize host process, a CLI command that reads the database) does not load the
manager and its actors.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wamgr.config import Config
    from wamgr.errors import (
        ConfigError,
        DatabaseUnavailable,
        HeldElsewhere,
        HolderNotAnswering,
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
    from wamgr.outbound_errors import InvalidMessage, MessageStateConflict, UnknownMessage
    from wamgr.status import TenantState, TenantStatus
    from wamgr.store.locks import Claim, ProcessingLocks
    from wamgr.store.outbound import OutboundMessage, OutboundStatus

#: Public name -> the module that defines it.
_WHERE = {
    "Claim": "wamgr.store.locks",
    "Config": "wamgr.config",
    "ConfigError": "wamgr.errors",
    "ConnectionManager": "wamgr.manager",
    "DatabaseUnavailable": "wamgr.errors",
    "HeldElsewhere": "wamgr.errors",
    "HolderNotAnswering": "wamgr.errors",
    "InboundMessage": "wamgr.events",
    "InstanceIdInUse": "wamgr.errors",
    "InvalidDuration": "wamgr.errors",
    "InvalidLockKey": "wamgr.errors",
    "InvalidMessage": "wamgr.outbound_errors",
    "InvalidMessageId": "wamgr.errors",
    "InvalidPhone": "wamgr.errors",
    "InvalidRecipient": "wamgr.errors",
    "JidInUse": "wamgr.errors",
    "InvalidTenantId": "wamgr.errors",
    "LockBusy": "wamgr.errors",
    "ManagerStopped": "wamgr.errors",
    "MessageStateConflict": "wamgr.outbound_errors",
    "NotConnected": "wamgr.errors",
    "NotPairing": "wamgr.errors",
    "OperationTimeout": "wamgr.errors",
    "OutboundMessage": "wamgr.store.outbound",
    "OutboundStatus": "wamgr.store.outbound",
    "PairingFailed": "wamgr.errors",
    "ProcessingLocks": "wamgr.store.locks",
    "StartCancelled": "wamgr.errors",
    "StatusEvent": "wamgr.events",
    "TenantState": "wamgr.status",
    "TenantStatus": "wamgr.status",
    "UnknownMessage": "wamgr.outbound_errors",
    "UnknownTenant": "wamgr.errors",
    "WamgrError": "wamgr.errors",
}

__all__ = [
    "Claim",
    "Config",
    "ConfigError",
    "ConnectionManager",
    "DatabaseUnavailable",
    "HeldElsewhere",
    "HolderNotAnswering",
    "InboundMessage",
    "InstanceIdInUse",
    "InvalidDuration",
    "InvalidLockKey",
    "InvalidMessage",
    "InvalidMessageId",
    "InvalidPhone",
    "InvalidRecipient",
    "InvalidTenantId",
    "JidInUse",
    "LockBusy",
    "ManagerStopped",
    "MessageStateConflict",
    "NotConnected",
    "NotPairing",
    "OperationTimeout",
    "OutboundMessage",
    "OutboundStatus",
    "PairingFailed",
    "ProcessingLocks",
    "StartCancelled",
    "StatusEvent",
    "TenantState",
    "TenantStatus",
    "UnknownMessage",
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
