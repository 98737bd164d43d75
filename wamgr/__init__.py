"""wamgr: keeps many WhatsApp Web connections alive, one socket per account, always."""

from wamgr.config import Config
from wamgr.errors import (
    ConfigError,
    DatabaseUnavailable,
    InvalidTenantId,
    ManagerStopped,
    NotConnected,
    OperationTimeout,
    UnknownTenant,
    WamgrError,
)
from wamgr.events import InboundMessage, StatusEvent
from wamgr.manager import ConnectionManager
from wamgr.status import TenantState, TenantStatus

__all__ = [
    "Config",
    "ConfigError",
    "ConnectionManager",
    "DatabaseUnavailable",
    "InboundMessage",
    "InvalidTenantId",
    "ManagerStopped",
    "NotConnected",
    "OperationTimeout",
    "StatusEvent",
    "TenantState",
    "TenantStatus",
    "UnknownTenant",
    "WamgrError",
]
