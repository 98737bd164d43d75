"""Tenant states, the status record every surface shows, and validation of what users give:
tenant ids, phone numbers, message recipients and texts."""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from wamgr.errors import InvalidPhone, InvalidRecipient, InvalidTenantId


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


#: States that wait for an operator (or a ban's expiry); a shutdown leaves them as they are.
PARKED_STATES = frozenset(
    {TenantState.CONFLICT, TenantState.LOGGED_OUT, TenantState.FAILED, TenantState.BANNED}
)


class Desired(enum.StrEnum):
    """What the operator or application asked for a tenant."""

    CONNECTED = "connected"
    STOPPED = "stopped"


#: 1 to 64 letters, digits, ``_ . -``; not ``.`` or ``..`` (a path would read them as folders)
#: and not starting with ``-`` (a command line would read it as an option).
TENANT_ID_PATTERN = r"^(?!-)(?!\.\.?$)[A-Za-z0-9_.\-]{1,64}$"
_TENANT_ID = re.compile(TENANT_ID_PATTERN.removesuffix("$"))


def validate_tenant_id(tenant_id: object) -> str:
    """Return ``tenant_id`` if it is 1–64 letters, digits, ``_ . -``, neither ``.`` nor ``..``
    and not starting with ``-``; else raise InvalidTenantId."""
    if not isinstance(tenant_id, str) or not _TENANT_ID.fullmatch(tenant_id):
        raise InvalidTenantId(tenant_id)
    return tenant_id


_PHONE_NOISE = re.compile(r"[ +\-().]")


def normalise_phone(phone: object) -> str:
    """The digits of an international phone number (7–15, country code first), or InvalidPhone."""
    if not isinstance(phone, str):
        raise InvalidPhone(phone)
    digits = _PHONE_NOISE.sub("", phone)
    if not digits.isdigit() or not 7 <= len(digits) <= 15:
        raise InvalidPhone(phone)
    return digits


#: The longest text WhatsApp accepts in one message, in characters.
MAX_TEXT_CHARS = 65_536

#: WhatsApp servers a message can be sent to: users, groups, hidden users (LIDs), channels,
#: broadcast lists and status.
RECIPIENT_SERVERS = ("s.whatsapp.net", "g.us", "lid", "newsletter", "broadcast")

#: A recipient as the API documents it: a phone number (7–15 digits, an optional leading
#: ``+``; spaces, dashes, dots and parentheses between digits are allowed), or
#: ``user[.agent][:device]@server`` on one of :data:`RECIPIENT_SERVERS`.
RECIPIENT_PATTERN = (
    r"^(\+?[(]?[0-9][0-9 ().-]{5,38}[0-9]|[A-Za-z0-9_-]{1,64}(\.[0-9]{1,3})?(:[0-9]{1,3})?"
    r"@(s\.whatsapp\.net|g\.us|lid|newsletter|broadcast))$"
)
_RECIPIENT = re.compile(RECIPIENT_PATTERN.removeprefix("^").removesuffix("$"), re.ASCII)


def validate_recipient(to: object) -> str:
    """The recipient ``to`` as transports take it: the digits of a phone number (7–15, an
    optional leading ``+``, spaces, dashes, dots and parentheses ignored), or a JID of a
    WhatsApp server (see :data:`RECIPIENT_SERVERS`) as given; else raise InvalidRecipient
    (which is a ValueError)."""
    if not isinstance(to, str) or not _RECIPIENT.fullmatch(to):
        raise InvalidRecipient(to)
    if "@" in to:
        return to
    digits = re.sub(r"[^0-9]", "", to)
    if not 7 <= len(digits) <= 15:
        raise InvalidRecipient(to)
    return digits


#: Control characters a message text may not hold (all but tab, line feed, carriage return).
_TEXT_CONTROLS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f"
#: A text with none of them (as the OpenAPI document says it).
TEXT_PATTERN = f"^[^{_TEXT_CONTROLS}]*$"
_TEXT_CONTROL = re.compile(f"[{_TEXT_CONTROLS}]")


def validate_text(text: str) -> str:
    """Return ``text`` if WhatsApp can carry it: at most :data:`MAX_TEXT_CHARS` characters,
    valid Unicode, no control character but tab and line breaks; else raise ValueError
    saying which."""
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"it has {len(text)} characters; WhatsApp takes {MAX_TEXT_CHARS}")
    found = _TEXT_CONTROL.search(text)
    if found:
        raise ValueError(
            f"it holds the control character {found.group()!r} at {found.start()}; "
            "only tab and line breaks may be sent"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"it holds a lone surrogate at {exc.start}") from None
    return text


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


def status_columns(
    changes: Sequence[tuple[TenantStatus, str | None]], prefix: str = ""
) -> dict[str, list[Any]]:
    """``(status, old_state)`` changes as one list per field, in order, for SQL's ``unnest``:
    ``{prefix}`` + ``tenants``, ``states``, ``olds``, ``owners``, ``attempts``, ``retries``
    (``next_retry_at``), ``errors`` (``last_error``), ``stamps`` (``updated_at``), ``jids``."""
    return {
        f"{prefix}tenants": [s.tenant_id for s, _ in changes],
        f"{prefix}states": [str(s.state) for s, _ in changes],
        f"{prefix}olds": [old for _, old in changes],
        f"{prefix}owners": [s.owner for s, _ in changes],
        f"{prefix}attempts": [s.attempt for s, _ in changes],
        f"{prefix}retries": [s.next_retry_at for s, _ in changes],
        f"{prefix}errors": [s.last_error for s, _ in changes],
        f"{prefix}stamps": [s.updated_at for s, _ in changes],
        f"{prefix}jids": [s.jid for s, _ in changes],
    }
