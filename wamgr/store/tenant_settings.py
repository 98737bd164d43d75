"""The ``wamgr_tenant_settings`` table: each tenant's proxy, webhooks, send rate, metadata.

Values are validated before they get here (:mod:`wamgr.tenant_settings`); this module only
reads and writes them. Secrets are stored as given (wamgr needs them to dial and to sign) and
are never logged here.
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from wamgr.errors import UnknownTenant
from wamgr.store.db import Database
from wamgr.tenant_settings import TenantSettings, settings_from_stored

_COLUMNS = "proxy, webhooks, send_rate, send_burst, metadata"


class TenantSettingsStore:
    """Reads and writes tenants' settings; every method is one short statement."""

    def __init__(self, db: Database):
        self._db = db

    def get(self, tenant_id: str) -> TenantSettings:
        """The tenant's settings (all defaults if it has none, or is unknown)."""
        with self._db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(
                f"SELECT {_COLUMNS} FROM wamgr_tenant_settings WHERE tenant_id = %s", (tenant_id,)
            ).fetchone()
        return settings_from_stored(row) if row else TenantSettings()

    def send_limits(self, tenant_id: str) -> tuple[float | None, int | None]:
        """The tenant's own ``send_rate`` and ``send_burst`` (None where it has none)."""
        settings = self.get(tenant_id)
        return settings.send_rate, settings.send_burst

    def send_limits_of(
        self, tenant_ids: Sequence[str]
    ) -> dict[str, tuple[float | None, int | None]]:
        """:meth:`send_limits` of many tenants in one statement; a tenant without its own
        limits (or unknown) is ``(None, None)``."""
        limits: dict[str, tuple[float | None, int | None]] = dict.fromkeys(tenant_ids, (None, None))
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT tenant_id, send_rate, send_burst FROM wamgr_tenant_settings"
                " WHERE tenant_id = ANY(%s)",
                (list(tenant_ids),),
            ).fetchall()
        for tenant_id, rate, burst in rows:
            limits[tenant_id] = (rate, burst)
        return limits

    def all(self) -> dict[str, TenantSettings]:
        """Every tenant that has settings: tenant id -> settings."""
        with self._db.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                f"SELECT tenant_id, {_COLUMNS} FROM wamgr_tenant_settings ORDER BY tenant_id"
            ).fetchall()
        return {row["tenant_id"]: settings_from_stored(row) for row in rows}

    def proxy(self, tenant_id: str) -> str | None:
        """The proxy the tenant's link dials through, or None (read at every dial)."""
        with self._db.connection() as conn:
            row = conn.execute(
                "SELECT proxy FROM wamgr_tenant_settings WHERE tenant_id = %s", (tenant_id,)
            ).fetchone()
        return row[0] if row else None

    def proxies(self, tenant_ids: Sequence[str]) -> dict[str, str]:
        """The proxy of each of ``tenant_ids`` that has one, in one statement (a claim pass
        reads its batch's at once)."""
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT tenant_id, proxy FROM wamgr_tenant_settings"
                " WHERE tenant_id = ANY(%s) AND proxy IS NOT NULL",
                (list(tenant_ids),),
            ).fetchall()
        return dict(rows)

    def put(self, tenant_id: str, settings: TenantSettings, create: bool = False) -> bool:
        """Store ``settings`` as the tenant's, whole; returns whether the tenant was created.
        With ``create`` an unknown tenant is added first, wanted stopped (so no instance
        dials it before its settings exist); without, an unknown tenant raises UnknownTenant."""
        values = {
            "tenant": tenant_id,
            "proxy": settings.proxy,
            "webhooks": Jsonb([w.stored() for w in settings.webhooks]),
            "rate": settings.send_rate,
            "burst": settings.send_burst,
            "metadata": None if settings.metadata is None else Jsonb(settings.metadata),
        }
        created = False
        with self._db.connection() as conn, conn.transaction():
            if create:
                created = (
                    conn.execute(
                        "INSERT INTO wamgr_tenants (tenant_id, desired) VALUES (%s, 'stopped')"
                        " ON CONFLICT (tenant_id) DO NOTHING RETURNING tenant_id",
                        (tenant_id,),
                    ).fetchone()
                    is not None
                )
            known = conn.execute(
                "SELECT 1 FROM wamgr_tenants WHERE tenant_id = %s FOR KEY SHARE", (tenant_id,)
            ).fetchone()
            if known is None:
                raise UnknownTenant(tenant_id)
            conn.execute(
                "INSERT INTO wamgr_tenant_settings"
                " (tenant_id, proxy, webhooks, send_rate, send_burst, metadata)"
                " VALUES (%(tenant)s, %(proxy)s, %(webhooks)s, %(rate)s, %(burst)s, %(metadata)s)"
                " ON CONFLICT (tenant_id) DO UPDATE SET proxy = EXCLUDED.proxy,"
                " webhooks = EXCLUDED.webhooks, send_rate = EXCLUDED.send_rate,"
                " send_burst = EXCLUDED.send_burst, metadata = EXCLUDED.metadata,"
                " updated_at = now()",
                values,
            )
        return created
