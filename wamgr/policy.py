"""What follows a closed link: pure functions, no I/O, no clock.

The supervisor feeds :func:`decide` the close reason and what it knows of the link; the
result says which state the tenant enters, whether and when to reconnect, whether to clear
the device's credentials and whether to give up the lease. The table in docs/architecture.md
is this module, in prose.
"""

from __future__ import annotations

from dataclasses import dataclass

from wamgr.status import TenantState
from wamgr.transport.base import CloseReason

#: Seconds a link must stay connected before its drop counts as a fresh failure (attempt 1).
STABLE_AFTER_S = 60.0

#: Seconds to wait for a ban whose expiry WhatsApp did not say.
DEFAULT_BAN_S = 3600.0


def backoff_delay(attempt: int) -> float:
    """Seconds to wait before reconnect attempt ``attempt`` (1-based).

    1 → 3 s; 2–5 → 5 s; 6–15 → 10 s; 16 and on → 30 s.
    """
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    if attempt == 1:
        return 3.0
    if attempt <= 5:
        return 5.0
    if attempt <= 15:
        return 10.0
    return 30.0


def jittered(delay: float, jitter: float, unit_random: float) -> float:
    """``delay`` spread by ±``jitter`` (a fraction, 0 = off) using ``unit_random`` in [0, 1)."""
    if not 0.0 <= jitter < 1.0:
        raise ValueError(f"jitter is a fraction in [0, 1), got {jitter}")
    return delay * (1.0 + jitter * (2.0 * unit_random - 1.0))


def next_attempt(previous_attempt: int, uptime_s: float, stable_after_s: float) -> int:
    """The attempt number of the reconnect that follows a drop.

    A link that stayed connected for ``stable_after_s`` or longer starts again at 1; one that
    dropped sooner (or never connected) is flapping and keeps escalating.
    """
    if uptime_s >= stable_after_s:
        return 1
    return previous_attempt + 1


@dataclass(frozen=True, slots=True)
class Decision:
    """What the tenant does after its link closed.

    ``reconnect_after_s`` is None when no automatic reconnect follows; ``attempt`` is the
    attempt number of that reconnect (kept as is when there is none).
    """

    state: TenantState
    reconnect_after_s: float | None
    attempt: int
    clear_auth: bool
    release_lease: bool
    error: str


@dataclass(frozen=True, slots=True)
class _Rule:
    state: TenantState
    reconnect: str  # "backoff" | "ban_expiry" | "never" | "lease"
    clear_auth: bool
    release_lease: bool
    what: str


_TRANSIENT = _Rule(TenantState.BACKOFF, "backoff", False, False, "connection lost")
_RULES: dict[CloseReason, _Rule] = {
    CloseReason.NETWORK: _TRANSIENT,
    CloseReason.DIAL_FAILED: _Rule(
        TenantState.BACKOFF, "backoff", False, False, "could not reach WhatsApp"
    ),
    CloseReason.KEEPALIVE_TIMEOUT: _Rule(
        TenantState.BACKOFF, "backoff", False, False, "keep-alive timed out"
    ),
    CloseReason.STREAM_ERROR: _Rule(TenantState.BACKOFF, "backoff", False, False, "stream error"),
    CloseReason.SERVER_ERROR: _Rule(
        TenantState.BACKOFF, "backoff", False, False, "WhatsApp server error (500/503)"
    ),
    CloseReason.REPLACED: _Rule(
        TenantState.CONFLICT,
        "never",
        False,
        True,
        "another client replaced this socket (440 conflict); stop it, then connect again",
    ),
    CloseReason.LOGGED_OUT: _Rule(
        TenantState.LOGGED_OUT, "never", True, True, "device logged out (401); pair again"
    ),
    CloseReason.MAIN_DEVICE_GONE: _Rule(
        TenantState.LOGGED_OUT, "never", True, True, "main device gone (403); pair again"
    ),
    CloseReason.UNKNOWN_LOGOUT: _Rule(
        TenantState.LOGGED_OUT, "never", True, True, "logged out (406); pair again"
    ),
    CloseReason.TEMPORARY_BAN: _Rule(
        TenantState.BANNED, "ban_expiry", False, False, "temporarily banned (402)"
    ),
    CloseReason.CLIENT_OUTDATED: _Rule(
        TenantState.FAILED, "never", False, True, "client outdated (405): upgrade neonize"
    ),
    CloseReason.BAD_USER_AGENT: _Rule(
        TenantState.FAILED, "never", False, True, "bad user agent (409): upgrade neonize"
    ),
    CloseReason.CONNECT_FAILURE: _Rule(
        TenantState.FAILED, "never", False, True, "WhatsApp refused the connection"
    ),
    CloseReason.CORRUPTED_KEYS: _Rule(
        TenantState.FAILED,
        "never",
        False,
        True,
        "too many undecryptable messages (corrupted keys): run `wamgr clear-auth TENANT` "
        "and pair again",
    ),
    CloseReason.DEVICE_IN_USE: _Rule(
        TenantState.FAILED, "never", False, True, "device in use by another tenant"
    ),
    CloseReason.PAIRING_TIMEOUT: _Rule(
        TenantState.LOGGED_OUT,
        "never",
        False,
        True,
        "not paired: no phone scanned the QR in time; run `wamgr pair TENANT`",
    ),
    CloseReason.LEASE_LOST: _Rule(
        TenantState.STANDBY, "lease", False, False, "lease lost; another instance may take over"
    ),
}


def decide(
    reason: CloseReason,
    *,
    attempt: int,
    uptime_s: float,
    detail: str = "",
    ban_expires_in_s: float | None = None,
    stable_after_s: float = STABLE_AFTER_S,
    clear_auth_on_corruption: bool = False,
) -> Decision:
    """Decide what follows a link that closed for ``reason``.

    ``attempt`` is the tenant's attempt counter before this close (0 if none), ``uptime_s``
    how long the link had been connected (0 if it never was). A close that wamgr itself
    requested is not a failure and must not reach this function.
    """
    if reason is CloseReason.REQUESTED:
        raise ValueError("a requested close is not a failure; the tenant handles it itself")
    rule = _RULES[reason]
    error = f"{rule.what}: {detail}" if detail else rule.what
    if reason is CloseReason.CORRUPTED_KEYS and clear_auth_on_corruption:
        return Decision(
            TenantState.CONNECTING, 0.0, 0, True, False, f"{error}; credentials cleared, re-pairing"
        )
    if rule.reconnect == "backoff":
        attempt = next_attempt(attempt, uptime_s, stable_after_s)
        return Decision(rule.state, backoff_delay(attempt), attempt, False, False, error)
    if rule.reconnect == "ban_expiry":
        wait = DEFAULT_BAN_S if ban_expires_in_s is None else max(0.0, ban_expires_in_s)
        return Decision(rule.state, wait, attempt, False, False, error)
    return Decision(rule.state, None, attempt, rule.clear_auth, rule.release_lease, error)


def close_reasons_table() -> list[tuple[CloseReason, TenantState, str, bool, bool]]:
    """Every failure reason with its state, reconnect rule, clear-auth and release-lease flags.

    Used by the docs and by tests that check every row.
    """
    return [
        (reason, rule.state, rule.reconnect, rule.clear_auth, rule.release_lease)
        for reason, rule in _RULES.items()
    ]
