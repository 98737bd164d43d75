"""Every error a user of wamgr can hit, each a named class that says what to do.

Like click's exceptions, each knows how to present itself: ``format_message()`` for a person,
``exit_code`` for the CLI and ``http_status`` for the HTTP API, so one handler per surface maps
them all.
"""

from __future__ import annotations


class WamgrError(Exception):
    """Base of wamgr's errors."""

    exit_code = 1
    http_status = 500

    def format_message(self) -> str:
        """A one-line message a person can act on."""
        return str(self)


class ConfigError(WamgrError, ValueError):
    """A setting is missing, malformed or inconsistent with another one."""

    exit_code = 2
    http_status = 500


class InvalidTenantId(WamgrError, ValueError):
    """A tenant id that wamgr does not accept."""

    exit_code = 2
    http_status = 422

    def __init__(self, tenant_id: object):
        self.tenant_id = tenant_id
        super().__init__(
            f"invalid tenant id {tenant_id!r}: use 1 to 64 characters, each a letter, a digit, "
            "'_', '.' or '-'"
        )


class UnknownTenant(WamgrError, LookupError):
    """The tenant is not known to wamgr (never added, or deleted)."""

    exit_code = 3
    http_status = 404

    def __init__(self, tenant_id: str):
        self.tenant_id = tenant_id
        super().__init__(
            f"unknown tenant {tenant_id!r}: add it first (wamgr tenants add {tenant_id}, "
            "or ConnectionManager.connect)"
        )


class NotConnected(WamgrError):
    """The tenant has no connected link, so it cannot send."""

    exit_code = 4
    http_status = 409

    def __init__(self, tenant_id: str, state: str):
        self.tenant_id = tenant_id
        self.state = state
        hint = {
            "stopped": "connect it first",
            "standby": "another instance holds it; send through that instance",
            "connecting": "wait until it is connected",
            "pairing": "pair it first (scan the QR or enter the pair code)",
            "backoff": "it is reconnecting; retry after its next_retry_at",
            "logged_out": "the device was unlinked: pair it again",
            "conflict": "another client replaced its socket: stop that client, then connect",
            "banned": "WhatsApp banned it temporarily; wait for the ban to expire",
            "failed": "see its last_error; an operator must act",
        }.get(state, "connect it first")
        super().__init__(f"tenant {tenant_id!r} is not connected (state {state}): {hint}")


class OperationTimeout(WamgrError, TimeoutError):
    """A call to the manager did not complete within its timeout."""

    exit_code = 5
    http_status = 504

    def __init__(self, what: str, timeout: float):
        self.what = what
        self.timeout = timeout
        super().__init__(
            f"{what} did not complete within {timeout:g} s; the manager may be overloaded or "
            "its database slow: check `wamgr status` and the logs, then retry"
        )


class ManagerStopped(WamgrError, RuntimeError):
    """The manager is stopped (or stopping) and takes no more calls."""

    exit_code = 6
    http_status = 503

    def __init__(self) -> None:
        super().__init__("the connection manager is stopped; start a new one")


class DatabaseUnavailable(WamgrError):
    """PostgreSQL cannot be reached or refused the work."""

    exit_code = 7
    http_status = 503

    def __init__(self, detail: str):
        self.detail = detail
        super().__init__(
            f"database unavailable: {detail}. Check WAMGR_DATABASE_URL (or, for the embedded "
            "database, WAMGR_HOME and its pgdata/log file)"
        )
