"""Every error a user of wamgr can hit, each a named class that says what to do.

Like click's exceptions, each knows how to present itself: ``format_message()`` for a person,
``exit_code`` for the CLI and ``http_status`` for the HTTP API, so one handler per surface maps
them all.
"""

from __future__ import annotations

from datetime import UTC, datetime

#: The most characters of a user's value an error message repeats.
SHOWN_CHARS_MAX = 80


def _one_line(text: str) -> str:
    """``text`` with every run of white space (line breaks included) as one space and other
    control characters escaped: a driver's multi-line message still makes a one-line error."""
    folded = " ".join(text.split())
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in folded)


def _shown(value: object) -> str:
    """``value`` as an error message shows it: its repr, cut to :data:`SHOWN_CHARS_MAX`
    characters with its length named when longer, so a huge value is not echoed back."""
    if isinstance(value, str) and len(value) > SHOWN_CHARS_MAX:
        return f"{value[:SHOWN_CHARS_MAX]!r}… ({len(value)} characters)"
    return repr(value)


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
            f"invalid tenant id {_shown(tenant_id)}: use 1 to 64 characters, each a letter, a "
            "digit, '_', '.' or '-', that do not start with '-' and are not '.' or '..'"
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

    def __init__(self, tenant_id: str, state: str, owner: str | None = None):
        self.tenant_id = tenant_id
        self.state = state
        self.owner = owner  # the instance holding it, when another than the one asked
        hint = {
            "stopped": "connect it first",
            "standby": "its lease is passing between instances; retry in a few seconds",
            "connecting": "wait until it is connected",
            "pairing": "pair it first (scan the QR or enter the pair code)",
            "backoff": "it is reconnecting; retry after its next_retry_at",
            "logged_out": "the device was unlinked: pair it again",
            "conflict": "another client replaced its socket: stop that client, then connect",
            "banned": "WhatsApp banned it temporarily; wait for the ban to expire",
            "failed": "see its last_error; an operator must act",
        }.get(state, "connect it first")
        where = f", on instance {owner!r}" if owner else ""
        super().__init__(f"tenant {tenant_id!r} is not connected (state {state}{where}): {hint}")


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


class HolderNotAnswering(OperationTimeout):
    """The instance holding a tenant did not answer a call forwarded to it in time (a timeout:
    code catching OperationTimeout catches it). Whether the holder acted is unknown."""

    def __init__(self, tenant_id: str, holder: str, what: str, timeout: float):
        self.tenant_id, self.holder, self.what, self.timeout = tenant_id, holder, what, timeout
        WamgrError.__init__(
            self,
            f"{what} was forwarded to instance {holder!r}, which holds tenant {tenant_id!r}, "
            f"and it did not answer within {timeout:g} s (stopped, paused or overloaded?): "
            "check it (`wamgr status`, its logs) and retry; whether it acted is unknown",
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
        self.detail = _one_line(detail)
        super().__init__(
            f"database unavailable: {self.detail}. Check WAMGR_DATABASE_URL (or, for the embedded "
            "database, WAMGR_HOME and its pgdata/log file)"
        )


class InstanceIdInUse(WamgrError):
    """Another live process holds this instance id: two processes must never share one."""

    exit_code = 11
    http_status = 409

    def __init__(
        self,
        instance_id: str,
        host: str,
        pid: int,
        started_at: datetime,
        expires_at: datetime,
    ):
        self.instance_id = instance_id
        self.host = host
        self.pid = pid
        self.started_at = started_at
        self.expires_at = expires_at
        since = started_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        until = expires_at.astimezone(UTC).strftime("%H:%M:%S")
        super().__init__(
            f"instance id {instance_id!r} is in use by another live process (pid {pid} on "
            f"host {host}, since {since} UTC; its claim runs until {until} UTC unless it "
            "renews it): give every process its own instance id (--instance-id or "
            "WAMGR_INSTANCE_ID; the default, host-pid, is unique), or stop that process first"
        )


class StartCancelled(WamgrError):
    """A stop was asked for while the manager was starting: it stopped what it had started.

    Not a failure: a process told to stop while starting exits 0, as after a normal stop.
    """

    exit_code = 0
    http_status = 503

    def __init__(self) -> None:
        super().__init__(
            "stopped during start-up: a stop was asked for before the manager had started; "
            "nothing was left running and no tenant was claimed"
        )


# --- processing locks and inbound dedup ---------------------------------------------------


class InvalidLockKey(WamgrError, ValueError):
    """A processing-lock key that wamgr does not accept."""

    exit_code = 2
    http_status = 422

    def __init__(self, key: object):
        self.key = key
        if not isinstance(key, str):
            why = f"it is a {type(key).__name__}, not a str"
        elif not key:
            why = "it is empty"
        elif "\x00" in key:
            why = "it contains a NUL character"
        else:
            why = f"it has {len(key)} characters"
        shown = key[:40] + "…" if isinstance(key, str) and len(key) > 40 else key
        super().__init__(
            f"invalid processing-lock key {shown!r} ({why}): use 1 to 255 characters of any "
            "text but NUL, e.g. 'tenant:prospect'"
        )


class InvalidDuration(WamgrError, ValueError):
    """A ttl, wait or retention that is not a number of seconds in the allowed range."""

    exit_code = 2
    http_status = 422

    def __init__(self, name: str, value: object, allowed: str):
        self.name = name
        self.value = value
        super().__init__(f"{name} must be {allowed}, got {_shown(value)}")


class InvalidMessageId(WamgrError, ValueError):
    """An inbound message id that cannot be recorded."""

    exit_code = 2
    http_status = 422

    def __init__(self, message_id: object):
        self.message_id = message_id
        super().__init__(
            f"invalid message id {_shown(message_id)}: use 1 to 255 characters of any text but NUL"
        )


class LockBusy(WamgrError, TimeoutError):
    """A processing lock stayed held by another claim for the whole wait."""

    exit_code = 8
    http_status = 409

    def __init__(self, key: str, wait_s: float, expires_at: datetime | None, owner: str | None):
        self.key = key
        self.wait_s = wait_s
        self.expires_at = expires_at
        self.owner = owner
        if expires_at is None:
            held = "another claim held it until the last attempt (it is free now)"
        else:
            at = expires_at.astimezone(UTC).isoformat(timespec="milliseconds")
            by = f" (owner {owner})" if owner else ""
            held = f"the current claim{by} expires at {at} unless its holder extends it"
        waited = f"not free within {wait_s:g} s" if wait_s > 0 else "held"
        super().__init__(
            f"processing lock {key!r} is busy: {waited}; {held}. Retry later, or wait longer"
        )


class NotPairing(WamgrError):
    """A pair code was asked for a tenant that is not waiting for pairing."""

    exit_code = 4
    http_status = 409

    def __init__(self, tenant_id: str, state: str):
        self.tenant_id = tenant_id
        self.state = state
        super().__init__(
            f"tenant {tenant_id!r} is not pairing (state {state}): connect it first; a tenant "
            "with no device shows a QR (state pairing), then a pair code can be asked for"
        )


class InvalidPhone(WamgrError, ValueError):
    """A phone number that cannot receive a pair code."""

    exit_code = 2
    http_status = 422

    def __init__(self, phone: object):
        self.phone = phone
        super().__init__(
            f"invalid phone number {_shown(phone)}: give the international number, digits only "
            "(7 to 15, country code first, e.g. 15551234567); '+', spaces and dashes are ignored"
        )


class HeldElsewhere(WamgrError):
    """The tenant's lease is held by another live instance, which must act instead."""

    exit_code = 9
    http_status = 409

    def __init__(self, tenant_id: str, owner: str, what: str):
        self.tenant_id = tenant_id
        self.owner = owner
        super().__init__(
            f"tenant {tenant_id!r} is connected by instance {owner!r}: {what} there, or stop it "
            f"first (wamgr tenants remove {tenant_id})"
        )


class InvalidRecipient(WamgrError, ValueError):
    """A message recipient that is neither a phone number nor a WhatsApp JID."""

    exit_code = 2
    http_status = 422
    #: The name of the field (argument or body field) that holds the recipient.
    field = "to"

    def __init__(self, to: object):
        self.to = to
        super().__init__(
            f"to: invalid recipient {_shown(to)}: give a phone number of 7 to 15 digits with "
            "an optional leading '+' (no spaces), or a WhatsApp JID such as "
            "15551234567@s.whatsapp.net (servers: s.whatsapp.net, g.us, lid, newsletter, "
            "broadcast)"
        )


# --- the HTTP API -------------------------------------------------------------------------


class BodyTooLarge(WamgrError):
    """An HTTP request whose body is longer than the server's ``max_body_bytes``."""

    exit_code = 2
    http_status = 413

    def __init__(self, limit: int):
        self.limit = limit
        super().__init__(
            f"the request body is over the limit of {limit} bytes: send less; the limit is "
            "the server's max_body_bytes (WAMGR_MAX_BODY_BYTES)"
        )


class ApiKeyRequired(WamgrError):
    """An HTTP request to ``/api`` without the right API key."""

    exit_code = 2
    http_status = 401

    def __init__(self, given: bool):
        what = "the API key given is wrong" if given else "no API key given"
        super().__init__(
            f"{what}: send the key the server was started with (WAMGR_API_KEY) as the "
            "X-Api-Key header or as Authorization: Bearer <key>"
        )


class LockNotHeld(WamgrError):
    """An extend or release of a processing lock with a token that no longer holds it."""

    exit_code = 8
    http_status = 409

    def __init__(self, key: str, token: int):
        self.key = key
        self.token = token
        super().__init__(
            f"processing lock {key!r} is not held with token {token}: the claim expired, or "
            "was taken over or cleared; stop the work it protected, and claim the key again"
        )


# --- pairing ---------------------------------------------------------------------------------


class PairingFailed(WamgrError):
    """Pairing a tenant ended without a connected device (``wamgr pair``)."""

    exit_code = 10
    http_status = 409

    def __init__(self, tenant_id: str, state: str, why: str | None):
        self.tenant_id = tenant_id
        self.state = state
        super().__init__(
            f"tenant {tenant_id!r} was not paired (state {state}): "
            f"{_one_line(why or 'no reason given')}; "
            f"see docs/troubleshooting.md, then run `wamgr pair {tenant_id}` again"
        )


class JidInUse(WamgrError):
    """A tenant paired as a device (JID) that another tenant is already paired as.

    Two tenants never share a device: the second one is refused, its link closed without
    logout (a logout would unlink the other tenant's device) and the tenant parked in
    ``failed``.
    """

    exit_code = 10
    http_status = 409

    def __init__(self, tenant_id: str, jid: str, owner: str | None):
        self.tenant_id = tenant_id
        self.jid = jid
        self.owner = owner
        held_by = f"tenant {owner!r}" if owner else "another tenant"
        free = f"wamgr clear-auth {owner}" if owner else "wamgr clear-auth on that tenant"
        super().__init__(
            f"device {jid} is already paired to {held_by}, so tenant {tenant_id!r} cannot use "
            f"it (two tenants never share a device): pair {tenant_id} with another phone "
            f"(wamgr pair {tenant_id}); if {held_by} no longer uses this device, free it "
            f"with `{free}`, then pair {tenant_id} again"
        )
