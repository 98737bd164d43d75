"""What every command takes from the group: the configuration, the database, tenant ids.

The global options (``--config``, ``--database-url``, ``--home``) live on the root context;
commands read them through :func:`load_config` and :func:`open_db` rather than each
repeating them. An option that is a setting and cannot work (a port past 65535, say) is
refused while options are parsed, in one line naming it (:class:`BadOption`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import click
from click.core import ParameterSource

from wamgr.config import Config
from wamgr.config_checks import shown
from wamgr.errors import WamgrError
from wamgr.status import validate_tenant_id
from wamgr.store.db import Database, open_database


class BadOption(click.ClickException):
    """An option whose value cannot work: ``wamgr: --OPTION ...`` on one line, exit 2.

    Raised while options are parsed, before any command runs (where ConfigError would not yet
    be turned into one line).
    """

    exit_code = 2

    def show(self, file: IO[Any] | None = None) -> None:
        """Print the one line on stderr."""
        click.echo(f"wamgr: {self.format_message()}", err=True, file=file)


def option_name(ctx: click.Context, param: click.Parameter) -> str:
    """How the user gave ``param``: its environment variable if it came from there, else its
    longest flag (``--log-level``)."""
    source = ctx.get_parameter_source(param.name or "")
    if source is ParameterSource.ENVIRONMENT and isinstance(param, click.Option):
        return str(param.envvar)
    return max(param.opts, key=len)


class Port(click.ParamType):
    """A TCP port: 0 (any free port, when ``allow_any``) or 1 to 65535; one line otherwise."""

    name = "port"

    def __init__(self, allow_any: bool = True):
        self.allow_any = allow_any

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        """``value`` as a port, or BadOption naming the option."""
        low = 0 if self.allow_any else 1
        try:
            port = int(value)
        except (TypeError, ValueError):
            port = -1
        if not low <= port <= 65535:
            name = option_name(ctx, param) if ctx and param else "port"
            raise BadOption(f"{name} must be a port from {low} to 65535, got {shown(value)}")
        return port


def load_config(ctx: click.Context, **overrides: Any) -> Config:
    """The configuration as the global options, the environment and ``overrides`` set it.

    An override that is one of this command's options is named by its flag in messages
    (``--instance-id``); a global option that came from its environment variable is left to
    Config, which reads and names the variable itself. Raises ConfigError (exit 2) for a
    setting that cannot work.
    """
    root = ctx.find_root()
    given: dict[str, Any] = {}
    names: dict[str, str] = {}
    for name in ("database_url", "home"):
        if root.get_parameter_source(name) is ParameterSource.COMMANDLINE:
            given[name] = root.params[name]
            names[name] = f"--{name.replace('_', '-')}"
    for name, value in overrides.items():
        given[name] = value
        if name in ctx.params and ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE:
            names[name] = f"--{name.replace('_', '-')}"
    return Config.load(root.params.get("config"), names=names, **given)


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
