"""Tenant states, the status record every surface shows, and tenant id validation."""

from __future__ import annotations

import enum
import re
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from wamgr.errors import InvalidPhone, InvalidTenantId


class TenantState(enum.StrEnum):
    """Where a tenant's connection is in its life (see docs/architecture.md)."""

    STOPPED = "stopped"  # not wanted connected (never connected, or removed)
    STANDBY = "standby"  # wanted connected, but another instance holds its lease
    CONNECTING = "connecting"  # a link is dialling
    PAIRING = "pairing"  # a QR or pair code is shown, waiting for the phone
    CONNECTED = "connected"
    BACKOFF = "backoff"  # the link dropped; a reconnect is scheduled
    LOGGED_OUT = "logged_out"  # the device was unlinked; pair again
    CONFLICT = "conflict"  # a socket outside wamgr replaced ours (440)
    BANNED = "banned"  # temporary ban; retried when it expires
    FAILED = "failed"  # needs an operator (see last_error)


#: Local states that count against an instance's capacity (they hold or want a socket).
RUNNING_STATES = frozenset(
    {
        TenantState.CONNECTING,
        TenantState.PAIRING,
        TenantState.CONNECTED,
        TenantState.BACKOFF,
        TenantState.BANNED,
    }
)


class Desired(enum.StrEnum):
    """What the operator or application asked for a tenant."""

    CONNECTED = "connected"
    STOPPED = "stopped"


_TENANT_ID = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def validate_tenant_id(tenant_id: object) -> str:
    """Return ``tenant_id`` if it is 1–64 letters, digits, ``_ . -``; else raise InvalidTenantId."""
    if not isinstance(tenant_id, str) or not _TENANT_ID.fullmatch(tenant_id):
        raise InvalidTenantId(tenant_id)
    return tenant_id


_PHONE_NOISE = re.compile(r"[\s+\-().]")


def normalise_phone(phone: object) -> str:
    """The digits of an international phone number (7–15, country code first), or InvalidPhone."""
    if not isinstance(phone, str):
        raise InvalidPhone(phone)
    digits = _PHONE_NOISE.sub("", phone)
    if not digits.isdigit() or not 7 <= len(digits) <= 15:
        raise InvalidPhone(phone)
    return digits


@dataclass(frozen=True, slots=True)
class TenantStatus:
    """A snapshot of one tenant, as the registry, the store and every surface show it.

    ``attempt`` counts consecutive reconnect attempts (0 when none is pending);
    ``next_retry_at`` is when the next one is due (UTC), in ``backoff`` and ``banned``.
    """

    tenant_id: str
    state: TenantState
    jid: str | None = None
    owner: str | None = None
    attempt: int = 0
    next_retry_at: datetime | None = None
    last_error: str | None = None
    updated_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """The fields as JSON-ready values (datetimes as ISO 8601 strings)."""
        out = asdict(self)
        out["state"] = str(self.state)
        for key in ("next_retry_at", "updated_at"):
            if out[key] is not None:
                out[key] = out[key].isoformat()
        return out
