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
        DeliveryNotFound,
        HeldElsewhere,
        HolderNotAnswering,
        InstanceIdInUse,
        InvalidDuration,
        InvalidLockKey,
        InvalidMessageId,
        InvalidPhone,
        InvalidRecipient,
        InvalidSetting,
        InvalidTenantId,
        JidInUse,
        LockBusy,
        ManagerStopped,
        MediaRefused,
        MediaTooLarge,
        MediaUnavailable,
        NotConnected,
        NotPairing,
        OperationTimeout,
        PairingFailed,
        StartCancelled,
        UnknownTenant,
        WamgrError,
    )
    from wamgr.events import InboundMessage, MessageAck, StatusEvent
    from wamgr.gc_tuning import tune_gc
    from wamgr.manager import ConnectionManager
    from wamgr.message_errors import InvalidMessage, MessageStateConflict, UnknownMessage
    from wamgr.status import TenantState, TenantStatus
    from wamgr.store.locks import Claim, ProcessingLocks
    from wamgr.store.outbound import OutboundMessage, OutboundStatus
    from wamgr.tenant_settings import TenantSettings, TenantWebhook

#: Public name -> the module that defines it.
_WHERE = {
    "AsyncConnectionManager": "wamgr.aio",
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
    "InvalidMessage": "wamgr.message_errors",
    "InvalidMessageId": "wamgr.errors",
    "InvalidPhone": "wamgr.errors",
    "InvalidRecipient": "wamgr.errors",
    "JidInUse": "wamgr.errors",
    "InvalidTenantId": "wamgr.errors",
    "LockBusy": "wamgr.errors",
    "ManagerStopped": "wamgr.errors",
    "MessageStateConflict": "wamgr.message_errors",
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
    "UnknownMessage": "wamgr.message_errors",
    "UnknownTenant": "wamgr.errors",
    "DeliveryNotFound": "wamgr.errors",
    "InvalidSetting": "wamgr.errors",
    "MediaRefused": "wamgr.errors",
    "MediaTooLarge": "wamgr.errors",
    "MediaUnavailable": "wamgr.errors",
    "WamgrError": "wamgr.errors",
    "TenantWebhook": "wamgr.tenant_settings",
    "TenantSettings": "wamgr.tenant_settings",
    "MessageAck": "wamgr.events",
    "tune_gc": "wamgr.gc_tuning",
}

__all__ = [
    "AsyncConnectionManager",
    "Claim",
    "Config",
    "ConfigError",
    "ConnectionManager",
    "DatabaseUnavailable",
    "DeliveryNotFound",
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
    "InvalidSetting",
    "InvalidTenantId",
    "JidInUse",
    "LockBusy",
    "ManagerStopped",
    "MediaRefused",
    "MediaTooLarge",
    "MediaUnavailable",
    "MessageAck",
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
    "TenantSettings",
    "TenantState",
    "TenantStatus",
    "TenantWebhook",
    "UnknownMessage",
    "UnknownTenant",
    "WamgrError",
    "tune_gc",
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
