"""wamgr: keeps many WhatsApp Web connections alive, one socket per account, always."""

from wamgr.config import Config
from wamgr.errors import (
    ConfigError,
    DatabaseUnavailable,
    HeldElsewhere,
    InvalidDuration,
    InvalidLockKey,
    InvalidMessageId,
    InvalidPhone,
    InvalidTenantId,
    LockBusy,
    ManagerStopped,
    NotConnected,
    NotPairing,
    OperationTimeout,
    PairingFailed,
    UnknownTenant,
    WamgrError,
)
from wamgr.events import InboundMessage, StatusEvent
from wamgr.manager import ConnectionManager
from wamgr.status import TenantState, TenantStatus
from wamgr.store.locks import Claim, ProcessingLocks

__all__ = [
    "Claim",
    "Config",
    "ConfigError",
    "ConnectionManager",
    "DatabaseUnavailable",
    "HeldElsewhere",
    "InboundMessage",
    "InvalidDuration",
    "InvalidLockKey",
    "InvalidMessageId",
    "InvalidPhone",
    "InvalidTenantId",
    "LockBusy",
    "ManagerStopped",
    "NotConnected",
    "NotPairing",
    "OperationTimeout",
    "PairingFailed",
    "ProcessingLocks",
    "StatusEvent",
    "TenantState",
    "TenantStatus",
    "UnknownTenant",
    "WamgrError",
]
