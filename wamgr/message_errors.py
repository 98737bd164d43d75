"""The errors of messages, presented as every :class:`~wamgr.errors.WamgrError` is (one line,
an exit code, an HTTP status): per-tenant settings, outgoing media, webhook deliveries and
inbound media (re-exported by :mod:`wamgr.errors`), and the durable outbound queue's
(:mod:`wamgr.outbound`). They live apart from :mod:`wamgr.errors` only to keep it readable."""

from __future__ import annotations

from wamgr.errors import WamgrError, _one_line, _shown


class InvalidSetting(WamgrError, ValueError):
    """A tenant setting (proxy, webhooks, send rate, metadata) that wamgr does not accept.

    ``field`` names the setting (``proxy``, ``webhooks[0].url``...); the message never
    repeats a secret the value may hold.
    """

    exit_code = 2
    http_status = 422

    def __init__(self, field: str, why: str):
        self.field = field
        super().__init__(f"{field}: {_one_line(why)}")


class MediaRefused(WamgrError, ValueError):
    """An outgoing message WhatsApp would refuse: media too large or of a type its kind does
    not take, or a kind that needs a field it lacks. ``field`` names what is wrong."""

    exit_code = 2
    http_status = 422

    def __init__(self, field: str, why: str):
        self.field = field
        super().__init__(f"{field}: {_one_line(why)}")


class MediaTooLarge(MediaRefused):
    """Media over WhatsApp's size limit for its kind (see ``wamgr.transport.outgoing``)."""

    def __init__(self, kind: str, size: int, limit: int):
        self.kind = kind
        self.size = size
        self.limit = limit
        super().__init__(
            "media",
            f"{kind} of {size} bytes is over WhatsApp's limit of {limit} bytes for a {kind}; "
            "send a smaller file, or send it as a document (up to 100 MB)",
        )


class DeliveryNotFound(WamgrError, LookupError):
    """A webhook delivery id that names no dead delivery (unknown, delivered or pending)."""

    exit_code = 3
    http_status = 404

    def __init__(self, delivery_id: object):
        self.delivery_id = delivery_id
        super().__init__(
            f"no dead webhook delivery {_shown(delivery_id)}: it is unknown, delivered, "
            "waiting for its next attempt or swept; list them with `wamgr webhooks dead`"
        )


class MediaUnavailable(WamgrError, LookupError):
    """The media of an inbound message cannot be downloaded here (no such message with media
    on this tenant's link, or the download failed)."""

    exit_code = 3
    http_status = 404

    def __init__(self, tenant_id: str, message_id: str, why: str):
        self.tenant_id = tenant_id
        self.message_id = message_id
        super().__init__(
            f"no media of message {_shown(message_id)} for tenant {tenant_id!r}: {_one_line(why)}"
        )


# --- the durable outbound queue -------------------------------------------------------


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
