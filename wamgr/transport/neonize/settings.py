"""NeonizeSettings: what the neonize transport needs to know, and nothing more.

Built from wamgr's Config in one place (``wamgr.transport.resolve_transport``), so the
transport never sees the rest of the configuration and never imports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wamgr.errors import ConfigError


@dataclass(frozen=True, slots=True)
class NeonizeSettings:
    """Where the device keys live and how links are spread over host processes."""

    #: PostgreSQL database of neonize's device keys (whatsmeow's tables): a URL or a psycopg
    #: ``key=value`` conninfo. Config: ``auth_database_url``, else wamgr's own database.
    auth_database_url: str = field(repr=False)
    #: The most links one host process runs (1: a process per tenant).
    #: Config: ``neonize_tenants_per_host``.
    tenants_per_host: int = 50
    #: Links a host serves before it retires: it takes no new ones and exits once its last
    #: link has closed (neonize leaks a database connection per connect).
    #: Config: ``neonize_host_connects``.
    host_connects: int = 50

    def __post_init__(self) -> None:
        for name in ("tenants_per_host", "host_connects"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a whole number of at least 1, not {value!r}")
