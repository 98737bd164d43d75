"""Errors of per-tenant settings, outgoing messages and webhook deliveries (re-exported by
:mod:`wamgr.errors`, where every error a user can hit is named)."""

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
