"""The errors of the durable outbound queue (:mod:`wamgr.outbound`), presented as every
:class:`~wamgr.errors.WamgrError` is: one line, an exit code, an HTTP status."""

from __future__ import annotations

from wamgr.errors import WamgrError, _one_line, _shown


class InvalidMessage(WamgrError, ValueError):
    """A message to queue that cannot be sent as given (its text, idempotency key or expiry)."""

    exit_code = 2
    http_status = 422

    def __init__(self, field: str, reason: str):
        self.field = field
        super().__init__(_one_line(f"{field}: {reason}"))


class UnknownMessage(WamgrError, LookupError):
    """The tenant has no outbound message with this id."""

    exit_code = 3
    http_status = 404

    def __init__(self, tenant_id: str, message_id: str):
        self.tenant_id = tenant_id
        self.message_id = message_id
        super().__init__(
            f"tenant {tenant_id!r} has no outbound message {_one_line(_shown(message_id))}: "
            f"list them with GET /api/tenants/{tenant_id}/messages"
        )


class MessageStateConflict(WamgrError):
    """An outbound message is not in a state that allows what was asked (cancel, resend)."""

    exit_code = 4
    http_status = 409

    def __init__(self, tenant_id: str, message_id: str, status: str, allowed: str):
        self.tenant_id = tenant_id
        self.message_id = message_id
        self.status = status
        super().__init__(
            f"message {message_id} of tenant {tenant_id!r} is {status}: only {allowed}"
        )
