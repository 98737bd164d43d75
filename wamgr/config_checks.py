"""Every setting's row: its Config field, its key in a file and the environment, its checks.

One row per setting in :data:`SETTINGS`. A row's *kind* (:class:`Seconds`, :class:`Whole`,
:class:`Text` …) turns a value into the setting's type and refuses what cannot work: the
wrong type, NaN or infinity, a timing of a few milliseconds or of centuries, a port past
65535. :func:`check_relations` then checks what holds between settings (``renew_interval <
renew_deadline < lease_ttl`` and the like). A refusal is a :class:`~wamgr.errors.ConfigError`
of one line that names the setting as the user wrote it: ``lease_ttl`` in a file,
``WAMGR_LEASE_TTL`` in the environment, ``--instance-id`` on the command line, ``lease_ttl_s``
in Python.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from wamgr.errors import ConfigError

#: The longest timing any setting accepts: longer waits overflow timers and SQL intervals.
YEAR_S = 365 * 86_400.0
#: A lease renewal gets ``renew_deadline - renew_interval`` to complete; less cannot work.
MIN_RENEWAL_WINDOW_S = 0.1
#: Characters of a refused value shown in a message (a hostile value can be megabytes).
SHOWN_CHARS = 60
_NONE_WORDS = ("", "none", "unlimited")


class BadValue(ValueError):
    """Raised by a kind: the reason a value cannot work, to follow the setting's name."""


def shown(value: Any) -> str:
    """``value`` as a message shows it: its repr, cut to :data:`SHOWN_CHARS` characters."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else f"{text[: SHOWN_CHARS - 5]}…{text[-4:]}"


def num(value: float) -> str:
    """A number as a message shows it: ``0.1``, ``31536000``, ``1e+308``."""
    return f"{value:.10g}"


def _is_none_word(value: Any, text: bool) -> bool:
    return value is None or (text and value.strip().lower() in _NONE_WORDS)


def _number(value: Any, text: bool, what: str, whole: bool) -> float | int:
    """``value`` as a finite number (int when ``whole``); BadValue saying ``what`` it must be."""
    if text:
        try:
            value = int(value) if whole else float(value)
        except ValueError:
            raise BadValue(f"must be a {what}, got {shown(value)}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadValue(f"must be a {what}, got {shown(value)}")
    if not math.isfinite(value):
        raise BadValue(f"must be a finite {what}, got {value}")
    if whole:
        if isinstance(value, float) and not value.is_integer():
            raise BadValue(f"must be a {what}, got {value}")
        return int(value)
    return float(value)


@dataclass(frozen=True)
class Seconds:
    """A timing in seconds, from ``low`` to ``high``."""

    low: float
    high: float = YEAR_S

    def __call__(self, value: Any, text: bool) -> float:
        """The value in seconds, or BadValue."""
        seconds = _number(value, text, "number of seconds", whole=False)
        if seconds <= 0:
            raise BadValue(f"must be a positive number of seconds, got {num(seconds)}")
        if seconds < self.low:
            raise BadValue(f"must be at least {num(self.low)} s, got {num(seconds)}")
        if seconds > self.high:
            raise BadValue(f"must be at most {num(self.high)} s, got {num(seconds)}")
        return seconds


@dataclass(frozen=True)
class Number:
    """A ``what`` (a number) from ``low`` to ``high``, ``high`` itself only if ``high_included``;
    None allowed when ``optional``."""

    low: float
    high: float
    what: str = "number"
    optional: bool = False
    high_included: bool = True

    def __call__(self, value: Any, text: bool) -> float | None:
        """The number, None (for an optional setting left unset), or BadValue."""
        if self.optional and _is_none_word(value, text):
            return None
        number = _number(value, text, self.what, whole=False)
        above = number > self.high if self.high_included else number >= self.high
        if number < self.low or above:
            end = "]" if self.high_included else ")"
            raise BadValue(
                f"must be a {self.what} in [{num(self.low)}, {num(self.high)}{end}, "
                f"got {num(number)}"
            )
        return number


@dataclass(frozen=True)
class Whole:
    """A whole number from ``low`` to ``high``; None allowed when ``optional``."""

    low: int
    high: int
    optional: bool = False

    def __call__(self, value: Any, text: bool) -> int | None:
        """The number, None (for an optional setting left unset), or BadValue."""
        if self.optional and _is_none_word(value, text):
            return None
        number = int(_number(value, text, "whole number", whole=True))
        if not self.low <= number <= self.high:
            raise BadValue(f"must be a whole number from {self.low} to {self.high}, got {number}")
        return number


def flag(value: Any, text: bool) -> bool:
    """true/false (also yes/no, on/off, 1/0 in the environment), or BadValue."""
    if text:
        lowered = value.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
    if not isinstance(value, bool):
        raise BadValue(f"must be true or false, got {shown(value)}")
    return value


@dataclass(frozen=True)
class Text:
    """A string of ``low`` to ``high`` printable characters; when ``optional``, None (or a
    blank string, taken as None).

    A ``secret`` value (a key) is never shown in a message.
    """

    low: int
    high: int
    optional: bool = False
    secret: bool = False

    def __call__(self, value: Any, text: bool) -> str | None:
        """The string, None (for an optional setting left empty), or BadValue."""
        if self.optional and (value is None or (isinstance(value, str) and not value.strip())):
            return None
        if not isinstance(value, str):
            raise BadValue(f"must be text, got {self._shown(value)}")
        if not self.low <= len(value) <= self.high:
            raise BadValue(f"must be {self.low} to {self.high} characters, got {len(value)}")
        if not value.isprintable():
            raise BadValue(f"must not hold control characters, got {self._shown(value)}")
        return value

    def _shown(self, value: Any) -> str:
        return f"a {type(value).__name__}" if self.secret else shown(value)


def api_key(value: Any, text: bool) -> str | None:
    """A key an HTTP client can send as it is: printable ASCII with no white space at either
    end; None (or an empty string) for no key. The key itself is never shown."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadValue(f"must be text, got a {type(value).__name__}")
    if value != value.strip():
        raise BadValue(
            "has white space at its start or end: HTTP drops it from headers, so no client "
            "could send the key; remove it"
        )
    if not (value.isascii() and value.isprintable()):
        raise BadValue(
            "must be printable ASCII (it travels in an HTTP header), e.g. "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    if len(value) > 4096:
        raise BadValue(f"must be at most 4096 characters, got {len(value)}")
    return value


def database_url(value: Any, text: bool) -> str | None:
    """A PostgreSQL URL or ``key=value`` conninfo; None (embedded) when empty.

    The value is never shown in a message: it may hold a password.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise BadValue(f"must be a PostgreSQL URL (text), got a {type(value).__name__}")
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        if "\x00" in value:
            raise ProgrammingError("NUL")
        conninfo_to_dict(value)
    except ProgrammingError:
        raise BadValue(
            "is neither a postgresql://USER:PASSWORD@HOST:PORT/DATABASE URL nor a key=value "
            "conninfo such as 'host=db dbname=wamgr'"
        ) from None
    return value


def folder(value: Any, text: bool) -> Path:
    """A folder path (``~`` expanded), or BadValue."""
    if not isinstance(value, str | Path):
        raise BadValue(f"must be a folder path (text), got {shown(value)}")
    if not str(value).strip() or "\x00" in str(value):
        raise BadValue(f"must be a folder path, got {shown(str(value))}")
    return Path(value).expanduser()


def transport(value: Any, text: bool) -> Any:
    """'neonize', 'sim', 'sim://HOST:PORT' or (from Python) a Transport object."""
    expected = "'neonize', 'sim' or 'sim://HOST:PORT'"
    if isinstance(value, str):
        if value in ("neonize", "sim"):
            return value
        if value.startswith("sim://"):
            host, _, port = value.removeprefix("sim://").rpartition(":")
            if host and port.isdigit() and 1 <= int(port) <= 65535 and host.isprintable():
                return value
            raise BadValue(f"{shown(value)} is not sim://HOST:PORT (a port from 1 to 65535)")
        raise BadValue(f"{shown(value)} is not one of {expected}")
    if callable(getattr(value, "create_link", None)):
        return value  # a Transport object handed in by embedding code
    raise BadValue(f"must be one of {expected}, got {shown(value)}")


def urls(value: Any, text: bool) -> tuple[str, ...]:
    """http(s) URLs: a list, or one string of URLs separated by commas or spaces."""
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    if not isinstance(value, list | tuple):
        raise BadValue(f"must be a list of http:// or https:// URLs, got {shown(value)}")
    for url in value:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise BadValue(f"{shown(url)} is not an http:// or https:// URL")
        if not urlsplit(url).hostname or not url.isprintable() or " " in url:
            raise BadValue(f"{shown(url)} is not an http:// or https:// URL with a host")
    return tuple(value)


def anything(value: Any, text: bool) -> Any:
    """A Python-only setting checked by its own type (the clock)."""
    return value


Kind = Callable[[Any, bool], Any]


@dataclass(frozen=True)
class Setting:
    """One setting: the Config field, its key in a file (None: Python only), its kind."""

    field: str
    key: str | None
    kind: Kind

    @property
    def env(self) -> str | None:
        """Its environment variable: ``WAMGR_`` + the key in upper case."""
        return None if self.key is None else f"WAMGR_{self.key.upper()}"

    def check(self, value: Any, name: str, text: bool = False) -> Any:
        """``value`` as this setting's type, or a ConfigError naming the setting ``name``.

        ``text``: the value came as a string from the environment, to be converted.
        """
        try:
            return self.kind(value, text and isinstance(value, str))
        except BadValue as exc:
            raise ConfigError(f"{name} {exc}") from None


#: Every setting, in the order of Config's fields. Ranges are what can work: below a few
#: tens of milliseconds timers flood the database; above a year they overflow.
SETTINGS: tuple[Setting, ...] = (
    Setting("database_url", "database_url", database_url),
    Setting("home", "home", folder),
    Setting("transport", "transport", transport),
    Setting("instance_id", "instance_id", Text(1, 128)),
    Setting("lease_ttl_s", "lease_ttl", Seconds(1.0)),
    Setting("renew_interval_s", "renew_interval", Seconds(0.1)),
    Setting("renew_deadline_s", "renew_deadline", Seconds(0.2)),
    Setting("claim_interval_s", "claim_interval", Seconds(0.05)),
    Setting("capacity", "capacity", Whole(1, 1_000_000, optional=True)),
    Setting(
        "connect_rate", "connect_rate", Number(0.001, 10_000, "number per second", optional=True)
    ),
    Setting("stable_after_s", "stable_after", Seconds(0.1)),
    Setting("backoff_jitter", "backoff_jitter", Number(0.0, 1.0, "fraction", high_included=False)),
    Setting("undecryptable_limit", "undecryptable_limit", Whole(1, 1_000_000)),
    Setting("undecryptable_window_s", "undecryptable_window", Seconds(1.0)),
    Setting("clear_auth_on_corruption", "clear_auth_on_corruption", flag),
    Setting("auth_database_url", "auth_database_url", database_url),
    Setting("neonize_tenants_per_host", "neonize_tenants_per_host", Whole(1, 10_000)),
    Setting("neonize_host_connects", "neonize_host_connects", Whole(1, 1_000_000)),
    Setting("claim_tenants", None, flag),
    Setting("call_timeout_s", "call_timeout", Seconds(0.1, 86_400.0)),
    Setting("db_pool_size", "db_pool_size", Whole(2, 1_000)),
    Setting("inbound_retention_s", "inbound_retention", Seconds(0.1)),
    Setting("sweep_interval_s", "sweep_interval", Seconds(0.05)),
    Setting("api_key", "api_key", api_key),
    Setting("max_body_bytes", "max_body_bytes", Whole(1, 1 << 30)),
    Setting("webhook_urls", "webhook_url", urls),
    Setting("webhook_secret", "webhook_secret", Text(1, 4096, optional=True, secret=True)),
    Setting("webhook_timeout_s", "webhook_timeout", Seconds(0.1, 3_600.0)),
    Setting("webhook_retry_base_s", "webhook_retry_base", Seconds(0.05)),
    Setting("webhook_retry_max_s", "webhook_retry_max", Seconds(0.05)),
    Setting("webhook_max_attempts", "webhook_max_attempts", Whole(1, 1_000)),
    Setting("outbound_expires_in_s", "outbound_expires_in", Seconds(1.0)),
    Setting("send_rate", "send_rate", Number(0.01, 1e6, "number per minute", optional=True)),
    Setting("send_burst", "send_burst", Whole(1, 100_000)),
    Setting("send_jitter_s", "send_jitter", Number(0.0, 3_600.0, "number of seconds")),
    Setting("send_typing", "send_typing", flag),
    Setting(
        "send_rate_total", "send_rate_total", Number(0.01, 1e7, "number per minute", optional=True)
    ),
    Setting("clock", None, anything),
)
BY_FIELD: dict[str, Setting] = {s.field: s for s in SETTINGS}
BY_KEY: dict[str, Setting] = {s.key: s for s in SETTINGS if s.key is not None}


def check_relations(values: Mapping[str, Any], names: Mapping[str, str]) -> None:
    """Refuse settings that each are fine but cannot work together.

    ``values`` holds every field; ``names`` says how the user wrote each (a field missing
    from it is named by its file key).
    """

    def name(field: str) -> str:
        return names.get(field) or BY_FIELD[field].key or field

    def shorter(low: str, high: str, why: str, margin: float = 0.0) -> None:
        gap = values[high] - values[low]
        if gap > 0 and gap >= margin:
            return
        by = f" by at least {num(margin)} s" if margin else ""
        raise ConfigError(
            f"{name(low)} ({num(values[low])} s) must be shorter than {name(high)} "
            f"({num(values[high])} s){by}, {why}: lower {name(low)} or raise {name(high)}"
        )

    shorter("renew_deadline_s", "lease_ttl_s", "so a holder gives up before anyone can take over")
    shorter("renew_interval_s", "renew_deadline_s", "or one late renewal fences")
    shorter(
        "renew_interval_s",
        "renew_deadline_s",
        "the time a renewal gets to complete",
        margin=MIN_RENEWAL_WINDOW_S,
    )
    if values["webhook_retry_base_s"] > values["webhook_retry_max_s"]:
        raise ConfigError(
            f"{name('webhook_retry_base_s')} ({num(values['webhook_retry_base_s'])} s) must "
            f"not exceed {name('webhook_retry_max_s')} ({num(values['webhook_retry_max_s'])} s)"
        )
    if values["webhook_urls"]:
        from wamgr.webhooks.signing import MAKE_SECRET, decode_secret

        if not values["webhook_secret"]:
            raise ConfigError(
                f"{name('webhook_urls')} is set but WAMGR_WEBHOOK_SECRET is not: receivers "
                f"verify signatures with it; make one with: {MAKE_SECRET}"
            )
        decode_secret(values["webhook_secret"])
