"""Config: every setting of a manager, from a TOML file, ``WAMGR_*`` variables and flags.

Later sources win: defaults < file < environment < explicit arguments. Every timing is in
seconds. Inconsistent values are refused at construction with a :class:`ConfigError` that
names the setting and says what would be valid.
"""

from __future__ import annotations

import os
import socket
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wamgr.clock import Clock
from wamgr.errors import ConfigError

if TYPE_CHECKING:
    from wamgr.transport.base import Transport


#: Bytes an HTTP request body may have unless ``max_body_bytes`` says otherwise (1 MiB).
DEFAULT_MAX_BODY_BYTES = 1024 * 1024


def _default_instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _default_home() -> Path:
    return Path.home() / ".wamgr"


@dataclass
class Config:
    """Settings of one :class:`~wamgr.ConnectionManager` (one instance of the service)."""

    #: PostgreSQL URL; None starts the embedded server in ``home``.
    database_url: str | None = None
    #: Folder for the embedded database and other local state.
    home: Path = field(default_factory=_default_home)
    #: "neonize" (real WhatsApp), "sim" (an in-process simulator), or a Transport object.
    transport: str | Transport = "neonize"
    #: This instance's name in leases and statuses; unique per running process.
    instance_id: str = field(default_factory=_default_instance_id)

    #: A lease not renewed for this long may be taken by another instance.
    lease_ttl_s: float = 30.0
    #: How often held leases are renewed.
    renew_interval_s: float = 10.0
    #: A lease not renewed for this long is given up (links closed) before the TTL runs out.
    renew_deadline_s: float = 20.0
    #: How often the instance looks for tenants to restore or take over.
    claim_interval_s: float = 5.0
    #: The most tenants this instance connects at once (None: no limit).
    capacity: int | None = None
    #: The most new connects per second this instance starts (None: no limit).
    connect_rate: float | None = None

    #: A link that stayed connected this long resets the reconnect attempt counter.
    stable_after_s: float = 60.0
    #: Spread reconnect delays by ±this fraction (0 = exact delays).
    backoff_jitter: float = 0.0
    #: More than this many undecryptable messages within the window means corrupted keys.
    undecryptable_limit: int = 20
    undecryptable_window_s: float = 300.0
    #: On corrupted keys, clear the credentials and re-pair instead of stopping in ``failed``.
    clear_auth_on_corruption: bool = False

    #: PostgreSQL URL of the device keys neonize stores (None: wamgr's own database).
    auth_database_url: str | None = field(default=None, repr=False)
    #: The most links one neonize host process runs (each host is a child process).
    neonize_tenants_per_host: int = 50
    #: Links a neonize host serves before it retires: it takes no new ones and exits when its
    #: last link has closed (neonize leaks a database connection on every connect).
    neonize_host_connects: int = 50
    #: Run the claim loop (restore and take over tenants); `wamgr pair` runs without it.
    claim_tenants: bool = True

    #: Default timeout of every blocking call of the manager.
    call_timeout_s: float = 10.0
    #: Connections in the database pool.
    db_pool_size: int = 10

    #: Inbound message ids are remembered this long, so a redelivery within it is dropped.
    inbound_retention_s: float = 7 * 86_400.0
    #: How often expired processing locks and inbound ids past the retention are deleted.
    sweep_interval_s: float = 60.0

    #: Key every ``/api`` request must carry (X-Api-Key or Bearer); None: loopback only.
    api_key: str | None = field(default=None, repr=False)
    #: The longest HTTP request body the API reads; a longer one is refused with 413.
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    #: Webhook endpoints (URLs) that get ``session.status`` and ``message.received`` events.
    webhook_urls: tuple[str, ...] = ()
    #: Standard Webhooks secret (``whsec_`` + base64); required with webhook_urls.
    webhook_secret: str | None = field(default=None, repr=False)
    #: Seconds one webhook delivery may take.
    webhook_timeout_s: float = 10.0
    #: First retry delay of a failed delivery; it doubles per attempt up to the max.
    webhook_retry_base_s: float = 5.0
    webhook_retry_max_s: float = 3600.0
    #: Attempts per delivery before it is given up.
    webhook_max_attempts: int = 20

    #: The clock every timer and timestamp uses (tests inject a VirtualClock).
    clock: Clock | None = None

    def __post_init__(self) -> None:
        self.home = Path(self.home).expanduser()
        if self.database_url == "":
            self.database_url = None
        if not self.instance_id or len(self.instance_id) > 128:
            raise ConfigError("instance_id must be 1 to 128 characters")
        positive = (
            "lease_ttl_s",
            "renew_interval_s",
            "renew_deadline_s",
            "claim_interval_s",
            "stable_after_s",
            "undecryptable_window_s",
            "call_timeout_s",
            "inbound_retention_s",
            "sweep_interval_s",
            "webhook_timeout_s",
            "webhook_retry_base_s",
            "webhook_retry_max_s",
        )
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int | float) or value <= 0:
                raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}")
        if self.renew_deadline_s >= self.lease_ttl_s:
            raise ConfigError(
                f"renew_deadline ({self.renew_deadline_s:g} s) must be shorter than lease_ttl "
                f"({self.lease_ttl_s:g} s), so a holder gives up before anyone can take over"
            )
        if self.renew_interval_s >= self.renew_deadline_s:
            raise ConfigError(
                f"renew_interval ({self.renew_interval_s:g} s) must be shorter than "
                f"renew_deadline ({self.renew_deadline_s:g} s), or one late renewal fences"
            )
        if self.capacity is not None and self.capacity < 1:
            raise ConfigError(f"capacity must be at least 1 (or unset), got {self.capacity}")
        if self.connect_rate is not None and self.connect_rate <= 0:
            raise ConfigError(f"connect_rate must be positive (or unset), got {self.connect_rate}")
        if not 0.0 <= self.backoff_jitter < 1.0:
            raise ConfigError(f"backoff_jitter is a fraction in [0, 1), got {self.backoff_jitter}")
        if self.undecryptable_limit < 1:
            raise ConfigError("undecryptable_limit must be at least 1")
        if self.db_pool_size < 2:
            raise ConfigError("db_pool_size must be at least 2")
        if self.auth_database_url is not None and not self.auth_database_url.strip():
            self.auth_database_url = None
        for name in ("neonize_tenants_per_host", "neonize_host_connects"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"{name} must be a whole number of at least 1")
        self._check_service_settings()
        if isinstance(self.transport, str) and not (
            self.transport in ("neonize", "sim") or self.transport.startswith("sim://")
        ):
            raise ConfigError(
                f"transport {self.transport!r} is not one of 'neonize', 'sim' or 'sim://HOST:PORT'"
            )

    def _check_service_settings(self) -> None:
        if self.api_key == "":
            self.api_key = None
        if self.api_key is not None:
            _check_api_key(self.api_key)
        if (
            not isinstance(self.max_body_bytes, int)
            or isinstance(self.max_body_bytes, bool)
            or self.max_body_bytes < 1
        ):
            raise ConfigError(
                f"max_body_bytes must be a whole number of bytes of at least 1, "
                f"got {self.max_body_bytes!r}"
            )
        if isinstance(self.webhook_urls, str):
            self.webhook_urls = _parse_urls(self.webhook_urls)
        self.webhook_urls = tuple(self.webhook_urls)
        for url in self.webhook_urls:
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise ConfigError(f"webhook_url {url!r} is not an http:// or https:// URL")
        if self.webhook_urls:
            from wamgr.webhooks.signing import MAKE_SECRET, decode_secret

            if not self.webhook_secret:
                raise ConfigError(
                    "webhook_url is set but WAMGR_WEBHOOK_SECRET is not: receivers verify "
                    f"signatures with it; make one with: {MAKE_SECRET}"
                )
            decode_secret(self.webhook_secret)
        if self.webhook_max_attempts < 1:
            raise ConfigError("webhook_max_attempts must be at least 1")

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> Config:
        """Build a Config from the file at ``path`` (if any), ``env`` and ``overrides``.

        File keys and variables share names: ``lease_ttl = 30`` in the file is
        ``WAMGR_LEASE_TTL=30`` in the environment. Overrides that are None are ignored, so
        unset CLI flags can be passed straight through.
        """
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        if path is not None:
            values.update(_from_file(Path(path)))
        elif env.get("WAMGR_CONFIG"):
            values.update(_from_file(Path(env["WAMGR_CONFIG"])))
        values.update(_from_env(env))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _check_api_key(key: object) -> None:
    """Refuse a key no HTTP client could send as it is (never showing the key)."""
    if not isinstance(key, str):
        raise ConfigError(f"api_key must be text, got a {type(key).__name__}")
    if key != key.strip():
        raise ConfigError(
            "api_key has white space at its start or end: HTTP drops it from headers, so no "
            "client could send the key; remove it"
        )
    if not (key.isascii() and key.isprintable()):
        raise ConfigError(
            "api_key must be printable ASCII (it travels in an HTTP header), e.g. "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _parse_urls(text: str) -> tuple[str, ...]:
    """URLs separated by commas or white space."""
    return tuple(part for part in text.replace(",", " ").split() if part)


def _parse_optional(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse_or_none(text: str) -> Any:
        return None if text.strip().lower() in ("", "none", "unlimited") else parse(text)

    return parse_or_none


#: setting key (file key, and env name without WAMGR_) -> (field, parser of text values)
_SETTINGS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "database_url": ("database_url", str),
    "home": ("home", Path),
    "transport": ("transport", str),
    "instance_id": ("instance_id", str),
    "lease_ttl": ("lease_ttl_s", float),
    "renew_interval": ("renew_interval_s", float),
    "renew_deadline": ("renew_deadline_s", float),
    "claim_interval": ("claim_interval_s", float),
    "capacity": ("capacity", _parse_optional(int)),
    "connect_rate": ("connect_rate", _parse_optional(float)),
    "stable_after": ("stable_after_s", float),
    "backoff_jitter": ("backoff_jitter", float),
    "undecryptable_limit": ("undecryptable_limit", int),
    "undecryptable_window": ("undecryptable_window_s", float),
    "clear_auth_on_corruption": ("clear_auth_on_corruption", _parse_bool),
    "auth_database_url": ("auth_database_url", str),
    "neonize_tenants_per_host": ("neonize_tenants_per_host", int),
    "neonize_host_connects": ("neonize_host_connects", int),
    "call_timeout": ("call_timeout_s", float),
    "db_pool_size": ("db_pool_size", int),
    "inbound_retention": ("inbound_retention_s", float),
    "sweep_interval": ("sweep_interval_s", float),
    "api_key": ("api_key", str),
    "max_body_bytes": ("max_body_bytes", int),
    "webhook_url": ("webhook_urls", _parse_urls),
    "webhook_secret": ("webhook_secret", str),
    "webhook_timeout": ("webhook_timeout_s", float),
    "webhook_retry_base": ("webhook_retry_base_s", float),
    "webhook_retry_max": ("webhook_retry_max_s", float),
    "webhook_max_attempts": ("webhook_max_attempts", int),
}


def setting_names() -> list[str]:
    """Every setting key a file or the environment may use."""
    return list(_SETTINGS)


def _convert(key: str, raw: Any, source: str) -> tuple[str, Any]:
    name, parse = _SETTINGS[key]
    try:
        return name, parse(raw) if isinstance(raw, str) else raw
    except ValueError as exc:
        raise ConfigError(f"{source}: bad value {raw!r} for {key} ({exc})") from exc


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    out = {}
    for key in _SETTINGS:
        var = f"WAMGR_{key.upper()}"
        if var in env:
            name, value = _convert(key, env[var], var)
            out[name] = value
    return out


def _from_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    table = data.get("wamgr", data)
    known = {f.name for f in fields(Config)}
    out = {}
    for key, raw in table.items():
        if key not in _SETTINGS:
            hint = f" (did you mean {key.removesuffix('_s')!r}?)" if key in known else ""
            raise ConfigError(f"config file {path}: unknown setting {key!r}{hint}")
        name, value = _convert(key, raw, f"config file {path}")
        out[name] = value
    return out
