"""Config: every setting of a manager, from a TOML file, ``WAMGR_*`` variables and flags.

Later sources win: defaults < file < environment < explicit arguments. A file is read only
when one is named (``--config FILE`` or ``WAMGR_CONFIG``). Every timing is in seconds. Each
value is checked for type, finiteness and range wherever it comes from, by its row in
:mod:`wamgr.config_checks`; a value that cannot work is refused with a :class:`ConfigError`
of one line that names the setting as its source spells it and says what would be valid.
"""

from __future__ import annotations

import os
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wamgr.clock import Clock
from wamgr.config_checks import BY_FIELD, BY_KEY, SETTINGS, check_relations, shown
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

    #: An outbound message not sent within this long expires (``expires_in`` overrides it).
    outbound_expires_in_s: float = 86_400.0
    #: Messages per minute one tenant may send (None: no limit), up to ``send_burst`` at once.
    send_rate: float | None = 20.0
    send_burst: int = 5
    #: A random extra gap of 0 to this many seconds after each message of a tenant.
    send_jitter_s: float = 0.0
    #: Show "typing…" before each message, for a time that grows with its length.
    send_typing: bool = False
    #: Messages per minute this instance sends over all its tenants (None: no limit).
    send_rate_total: float | None = None

    #: The clock every timer and timestamp uses (tests inject a VirtualClock).
    clock: Clock | None = None

    def __post_init__(self) -> None:
        names = {s.field: s.field for s in SETTINGS}
        for setting in SETTINGS:
            value = getattr(self, setting.field)
            setattr(self, setting.field, setting.check(value, setting.field))
        check_relations(vars(self), names)

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        *,
        names: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> Config:
        """Build a Config from a file, ``env`` and ``overrides``; later ones win.

        The file is ``path``, else the one ``WAMGR_CONFIG`` names, else none: no file is
        read unless one is named. File keys and variables share names: ``lease_ttl = 30``
        in the file is ``WAMGR_LEASE_TTL=30`` in the environment. Overrides are keyed by
        Config field or file key; those that are None are ignored, so unset CLI flags can be
        passed straight through. ``names`` says how the caller's user wrote an override
        (``{"instance_id": "--instance-id"}``), for messages.

        Raises ConfigError naming the setting as its source spells it.
        """
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        given_names: dict[str, str] = {}
        if path is None and env.get("WAMGR_CONFIG"):
            path = env["WAMGR_CONFIG"]
        if path is not None:
            for field_name, (value, name) in _from_file(Path(path)).items():
                values[field_name], given_names[field_name] = value, name
        for field_name, (value, name) in _from_env(env).items():
            values[field_name], given_names[field_name] = value, name
        for key, value in overrides.items():
            if value is None:
                continue
            setting = BY_FIELD.get(key) or BY_KEY.get(key)
            if setting is None:
                raise TypeError(f"Config has no setting {key!r}")
            name = (names or {}).get(key, key)
            values[setting.field] = setting.check(value, name)
            given_names[setting.field] = name
        defaults = {f.name: _default(f) for f in fields(cls) if f.name not in values}
        check_relations({**defaults, **values}, given_names)
        return cls(**values)


def _default(f: Field[Any]) -> Any:
    if f.default_factory is not MISSING:
        return f.default_factory()
    return f.default


def setting_names() -> list[str]:
    """Every setting key a file or the environment may use."""
    return list(BY_KEY)


def _from_env(env: Mapping[str, str]) -> dict[str, tuple[Any, str]]:
    """The settings ``env`` sets: field -> (checked value, variable name)."""
    out = {}
    for setting in BY_KEY.values():
        var = setting.env
        if var is not None and var in env:
            out[setting.field] = (setting.check(env[var], var, text=True), var)
    return out


def _from_file(path: Path) -> dict[str, tuple[Any, str]]:
    """The settings the TOML file at ``path`` sets: field -> (checked value, key)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not UTF-8 text (byte {exc.start} cannot be read)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    table = data.get("wamgr", data)
    if not isinstance(table, dict):
        raise ConfigError(f"config file {path}: [wamgr] must be a table of settings")
    outside = [key for key in data if key != "wamgr"] if table is not data else []
    if outside:
        raise ConfigError(
            f"config file {path}: {shown(outside[0])} is outside [wamgr] and would be ignored; "
            "put every setting under [wamgr], or leave [wamgr] out"
        )
    out = {}
    for key, raw in table.items():
        setting = BY_KEY.get(key)
        if setting is None:
            meant = BY_FIELD[key].key if key in BY_FIELD else None
            hint = f" (did you mean {meant!r}?)" if meant else ""
            raise ConfigError(f"config file {path}: unknown setting {shown(key)}{hint}")
        try:
            out[setting.field] = (setting.check(raw, key), key)
        except ConfigError as exc:
            raise ConfigError(f"config file {path}: {exc}") from None
    return out
