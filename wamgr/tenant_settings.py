"""Per-tenant settings: what one tenant does differently from the instance's defaults.

- ``proxy``: ``socks5://`` or ``http://`` URL (credentials allowed) the tenant's link dials
  WhatsApp through; applied before the link dials, so it takes effect at the next connection.
- ``webhooks``: the tenant's own endpoints, each with the events it wants (none listed:
  every event) and optionally its own Standard Webhooks secret (else the global one signs).
  The global endpoints still get every event of every tenant.
- ``send_rate`` (messages per minute) and ``send_burst``: read by the outbound queue's pacing.
- ``metadata``: free JSON for the application, returned with the tenant's status.

Secrets (the proxy's password, webhook secrets, credentials in a webhook URL) are kept as
given, because wamgr needs them, and shown only masked: :meth:`TenantSettings.shown` is
what every surface (HTTP, CLI, logs via ``repr``) prints. Pure: no I/O.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import SplitResult, urlsplit

from wamgr.errors import ConfigError, InvalidSetting
from wamgr.webhooks.events import EVENT_TYPES
from wamgr.webhooks.signing import decode_secret

#: What a masked secret shows instead of its value.
MASK = "***"
PROXY_SCHEMES = ("socks5", "socks5h", "http", "https")
#: Longest URL (proxy or webhook) accepted, in characters.
URL_CHARS_MAX = 2048
#: Most webhook endpoints one tenant may have.
WEBHOOKS_MAX = 10
#: Largest ``metadata``, as compact JSON, in bytes.
METADATA_BYTES_MAX = 16 * 1024
#: Bounds of ``send_rate`` (messages per minute) and ``send_burst`` (messages).
SEND_RATE_MAX = 6000.0
SEND_BURST_MAX = 1000
#: The settings a caller may set (``configure(tenant_id, **settings)``).
FIELDS = ("proxy", "webhooks", "send_rate", "send_burst", "metadata")


@dataclass(frozen=True, slots=True)
class TenantWebhook:
    """One endpoint of a tenant: its URL, the events it wants (empty: all), its own secret."""

    url: str = field(repr=False)
    events: tuple[str, ...] = ()
    secret: str | None = field(default=None, repr=False)

    def wants(self, event_type: str) -> bool:
        """Whether this endpoint gets events of ``event_type``."""
        return not self.events or event_type in self.events

    def stored(self) -> dict[str, Any]:
        """The JSON the store keeps (secret included)."""
        return {"url": self.url, "events": list(self.events), "secret": self.secret}

    def shown(self) -> dict[str, Any]:
        """The JSON every surface shows: URL credentials and the secret masked."""
        return {
            "url": mask_url(self.url),
            "events": list(self.events),
            "secret": MASK if self.secret else None,
        }


@dataclass(frozen=True, slots=True)
class TenantSettings:
    """A tenant's settings; None (or empty) means the instance's default."""

    proxy: str | None = None
    webhooks: tuple[TenantWebhook, ...] = ()
    send_rate: float | None = None
    send_burst: int | None = None
    metadata: dict[str, Any] | None = None

    def shown(self) -> dict[str, Any]:
        """The settings as every surface shows them, secrets masked."""
        return {
            "proxy": mask_url(self.proxy) if self.proxy else None,
            "webhooks": [w.shown() for w in self.webhooks],
            "send_rate": self.send_rate,
            "send_burst": self.send_burst,
            "metadata": self.metadata,
        }

    def changed(self, **changes: Any) -> TenantSettings:
        """These settings with ``changes`` applied, each validated; a change to None clears
        that setting. Raises InvalidSetting naming the field."""
        unknown = sorted(set(changes) - set(FIELDS))
        if unknown:
            raise InvalidSetting(
                unknown[0], f"no such setting; the settings are {', '.join(FIELDS)}"
            )
        values: dict[str, Any] = {}
        for name, value in changes.items():
            values[name] = _VALIDATORS[name](value)
        return replace(self, **values)

    def __repr__(self) -> str:  # never a secret in a log line
        return f"TenantSettings({self.shown()!r})"


# --- validation (each raises InvalidSetting naming the field) --------------------------------


def validate_proxy(value: object) -> str | None:
    """A proxy URL: ``socks5://[user:password@]host:port`` or ``http(s)://...``; None clears."""
    if value is None or value == "":
        return None
    parts = _url("proxy", value, PROXY_SCHEMES)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InvalidSetting("proxy", "a proxy URL has no path, query or fragment")
    if parts.port is None:
        raise InvalidSetting("proxy", "give the proxy's port, e.g. socks5://host:1080")
    return str(value).rstrip("/")


def validate_webhooks(value: object) -> tuple[TenantWebhook, ...]:
    """A list of endpoints: each a URL, or ``{"url", "events": [...], "secret"}``."""
    if value is None:
        return ()
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise InvalidSetting("webhooks", "give a list of endpoints")
    hooks = list(value)
    if len(hooks) > WEBHOOKS_MAX:
        raise InvalidSetting("webhooks", f"at most {WEBHOOKS_MAX} endpoints per tenant")
    out: list[TenantWebhook] = []
    for n, hook in enumerate(hooks):
        where = f"webhooks[{n}]"
        if isinstance(hook, TenantWebhook):
            hook = hook.stored()
        if isinstance(hook, str):
            hook = {"url": hook}
        if not isinstance(hook, Mapping):
            raise InvalidSetting(where, "give a URL or an object with url, events and secret")
        extra = sorted(set(hook) - {"url", "events", "secret"})
        if extra:
            raise InvalidSetting(f"{where}.{extra[0]}", "unknown field (url, events, secret)")
        url = _url(f"{where}.url", hook.get("url"), ("http", "https")).geturl()
        out.append(
            TenantWebhook(
                url,
                validate_events(hook.get("events"), f"{where}.events"),
                _secret(hook.get("secret"), f"{where}.secret"),
            )
        )
    urls = [h.url for h in out]
    if len(set(urls)) != len(urls):
        raise InvalidSetting("webhooks", "an endpoint URL is listed twice")
    return tuple(out)


def validate_events(value: object, where: str = "events") -> tuple[str, ...]:
    """Event types (a list, or a comma-separated string); empty or ``*`` means every event."""
    if value is None:
        return ()
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, Iterable):
        raise InvalidSetting(where, "give a list of event types")
    events: list[str] = []
    for name in names:
        name = str(name).strip()
        if name in ("", "*"):
            continue
        if name not in EVENT_TYPES:
            raise InvalidSetting(
                where, f"unknown event {name[:40]!r}; the events are {', '.join(EVENT_TYPES)}"
            )
        if name not in events:
            events.append(name)
    return tuple(events)


def validate_send_rate(value: object) -> float | None:
    """Messages per minute, more than 0 and at most :data:`SEND_RATE_MAX`; None clears."""
    if value is None:
        return None
    rate = _number("send_rate", value)
    if not 0 < rate <= SEND_RATE_MAX:
        raise InvalidSetting("send_rate", f"give messages per minute, > 0 and ≤ {SEND_RATE_MAX:g}")
    return rate


def validate_send_burst(value: object) -> int | None:
    """Messages sent back to back before the rate applies, 1 to :data:`SEND_BURST_MAX`."""
    if value is None:
        return None
    burst = _number("send_burst", value)
    if burst != int(burst) or not 1 <= burst <= SEND_BURST_MAX:
        raise InvalidSetting("send_burst", f"give a whole number from 1 to {SEND_BURST_MAX}")
    return int(burst)


def validate_metadata(value: object) -> dict[str, Any] | None:
    """A JSON object of at most :data:`METADATA_BYTES_MAX` bytes; None clears."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidSetting("metadata", "give a JSON object")
    try:
        text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidSetting("metadata", f"not JSON: {exc}") from None
    if len(text.encode()) > METADATA_BYTES_MAX:
        raise InvalidSetting("metadata", f"at most {METADATA_BYTES_MAX} bytes of JSON")
    return json.loads(text)


_VALIDATORS = {
    "proxy": validate_proxy,
    "webhooks": validate_webhooks,
    "send_rate": validate_send_rate,
    "send_burst": validate_send_burst,
    "metadata": validate_metadata,
}


def mask_url(url: str) -> str:
    """``url`` with the password of its credentials replaced by :data:`MASK`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return parts._replace(netloc=f"{user}:{MASK}@{netloc}").geturl()


def _url(where: str, value: object, schemes: tuple[str, ...]) -> SplitResult:
    if not isinstance(value, str) or not value:
        raise InvalidSetting(where, "give a URL")
    if len(value) > URL_CHARS_MAX or not value.isprintable() or " " in value:
        raise InvalidSetting(where, f"a URL of at most {URL_CHARS_MAX} printable characters")
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        raise InvalidSetting(where, "not a valid URL (bad port or host)") from None
    if parts.scheme not in schemes:
        raise InvalidSetting(where, f"the scheme must be one of {', '.join(schemes)}")
    if not parts.hostname or not port_ok:
        raise InvalidSetting(where, "the URL needs a host (and a port from 1 to 65535)")
    return parts


def _secret(value: object, where: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value == MASK:
        raise InvalidSetting(where, "give the secret itself, not its mask")
    try:
        decode_secret(str(value), where)
    except ConfigError as exc:
        raise InvalidSetting(where, str(exc).removeprefix(f"{where} ")) from None
    return str(value)


def _number(where: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidSetting(where, "give a number")
    try:
        number = float(value)
    except ValueError:
        raise InvalidSetting(where, "give a number") from None
    if not math.isfinite(number):
        raise InvalidSetting(where, "give a finite number")
    return number


def settings_from_stored(row: Mapping[str, Any]) -> TenantSettings:
    """Settings from a stored row (already validated when written)."""
    hooks = tuple(
        TenantWebhook(h["url"], tuple(h.get("events") or ()), h.get("secret"))
        for h in row.get("webhooks") or ()
    )
    return TenantSettings(
        proxy=row.get("proxy"),
        webhooks=hooks,
        send_rate=row.get("send_rate"),
        send_burst=row.get("send_burst"),
        metadata=row.get("metadata"),
    )
