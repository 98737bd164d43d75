"""What every command takes from the group: the configuration, the database, tenant ids.

The global options (``--config``, ``--database-url``, ``--home``) live on the root context;
commands read them through :func:`load_config` and :func:`open_db` rather than each
repeating them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from wamgr.config import Config
from wamgr.errors import WamgrError
from wamgr.status import validate_tenant_id
from wamgr.store.db import Database, open_database


def load_config(ctx: click.Context, **overrides: Any) -> Config:
    """The configuration as the global options, the environment and ``overrides`` set it.

    Raises ConfigError (exit 2) when the settings are inconsistent.
    """
    params = ctx.find_root().params
    return Config.load(
        params.get("config"),
        database_url=params.get("database_url"),
        home=params.get("home"),
        **overrides,
    )


@contextmanager
def open_db(ctx: click.Context) -> Iterator[Database]:
    """wamgr's database, opened and migrated; closed (and the embedded server left) after.

    Raises DatabaseUnavailable (exit 7) when it cannot be reached within ``call_timeout``.
    """
    cfg = load_config(ctx)
    db, close = open_database(cfg.database_url, cfg.home, timeout_s=cfg.call_timeout_s)
    try:
        yield db
    finally:
        close()


def tenant_ids(
    _: click.Context | None, __: click.Parameter | None, values: tuple[str, ...]
) -> list[str]:
    """Click callback: every value checked as a tenant id; a bad one is a usage error (exit 2)
    that says what is allowed, before anything is done with the others."""
    try:
        return [validate_tenant_id(v) for v in values]
    except WamgrError as exc:
        raise click.BadParameter(exc.format_message()) from exc


def checked_tenant_id(value: str) -> str:
    """``value`` checked as one tenant id, as :func:`tenant_ids` checks an argument."""
    (checked,) = tenant_ids(None, None, (value,))
    return checked
