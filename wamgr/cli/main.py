"""The ``wamgr`` group: global options, errors as exit codes, and ``wamgr serve``.

Every command but ``serve`` (and ``pair``, ``sim``) works on the database directly, so it
works from another process (or host) while ``serve`` runs. Errors print one line,
``wamgr: <what to do>``, and exit non-zero (the code depends on the error; see
docs/troubleshooting.md).
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import click
from loguru import logger

from wamgr import logging as wamgr_logging
from wamgr._version import __version__
from wamgr.cli.admin import db, locks, webhooks
from wamgr.cli.commands import connect, disconnect, logout, messages, reconnect, send, status
from wamgr.cli.context import BadOption, Port, load_config, option_name
from wamgr.cli.pairing import clear_auth, pair
from wamgr.cli.signals import StopSignals
from wamgr.cli.sim import sim, sim_stats
from wamgr.cli.tenants import tenants
from wamgr.config_checks import shown
from wamgr.errors import WamgrError
from wamgr.manager import STOP_BUDGET_S, ConnectionManager

#: Seconds ``serve`` may take from SIGTERM or SIGINT to its exit: the manager's own stop
#: budget, the HTTP server's (requests under way get 3 s, its thread 3 s more) and a margin
#: for closing the database. Past it, or at a second signal, it exits at once with 128 + the
#: signal's number, and its leases expire by themselves.
SERVE_STOP_BUDGET_S = STOP_BUDGET_S + 10.0


class WamgrGroup(click.Group):
    """A click group that turns wamgr's errors into one line and their exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; WamgrError -> ``wamgr: message`` on stderr and its exit code."""
        try:
            return super().invoke(ctx)
        except WamgrError as exc:
            click.echo(f"wamgr: {exc.format_message()}", err=True)
            ctx.exit(exc.exit_code)


def _log_level(ctx: click.Context, param: click.Parameter, value: str) -> str:
    level = value.strip().upper()
    if level not in wamgr_logging.LEVELS:
        raise BadOption(
            f"{option_name(ctx, param)} must be one of {', '.join(wamgr_logging.LEVELS)}, "
            f"got {shown(value)}"
        )
    return level


@click.group(cls=WamgrGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="wamgr", message="%(prog)s %(version)s")
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Settings file (TOML). Default: the file WAMGR_CONFIG names; else none is read.",
)
@click.option(
    "--database-url", envvar="WAMGR_DATABASE_URL", help="PostgreSQL URL (default: embedded)."
)
@click.option(
    "--home",
    envvar="WAMGR_HOME",
    type=click.Path(file_okay=False),
    help="Folder of the embedded database (default ~/.wamgr).",
)
@click.option("--log-json", is_flag=True, help="Log one JSON object per line.")
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    callback=_log_level,
    help="TRACE, DEBUG, INFO, WARNING, ERROR or CRITICAL.",
)
def main(
    config: Path | None,
    database_url: str | None,
    home: str | None,
    log_json: bool,
    log_level: str,
) -> None:
    """Keep many WhatsApp Web connections alive: one socket per account, always.

    \b
    Example:
      wamgr tenants add shop-1      # want shop-1 connected
      wamgr serve --transport sim   # run the service (Ctrl-C stops it cleanly)
      wamgr status --json           # from another shell
    """
    wamgr_logging.configure(level=log_level, json=log_json)


@main.command()
@click.option(
    "--transport",
    help="neonize (real WhatsApp), sim (in-process simulator) or sim://HOST:PORT (a shared "
    "`wamgr sim`). Default: neonize.",
)
@click.option("--instance-id", help="This instance's name in leases (default host-pid).")
@click.option(
    "--host",
    envvar="WAMGR_HTTP_HOST",
    default="127.0.0.1",
    show_default=True,
    help="Address of the HTTP API; beyond loopback only with WAMGR_API_KEY set.",
)
@click.option(
    "--port",
    envvar="WAMGR_HTTP_PORT",
    type=Port(),
    default=8080,
    show_default=True,
    help="Port of the HTTP API (0: any free port).",
)
@click.pass_context
def serve(
    ctx: click.Context, transport: str | None, instance_id: str | None, host: str, port: int
) -> None:
    """Run the manager and its HTTP API until SIGTERM or SIGINT, then close links (no logout)
    and release leases.

    The API (docs at /docs) needs the key in WAMGR_API_KEY; without one it listens on
    loopback only.

    \b
    Example:
      WAMGR_API_KEY=s3cret wamgr serve --transport sim --host 0.0.0.0 --port 8080
    """
    from wamgr.api.app import create_app
    from wamgr.api.server import HttpServer, check_binding
    from wamgr.gc_tuning import tune_gc

    cfg = load_config(ctx, transport=transport, instance_id=instance_id)
    check_binding(host, cfg.api_key)
    frozen = tune_gc()  # this process is wamgr's: fewer, shorter pauses with many tenants
    with StopSignals(SERVE_STOP_BUDGET_S) as signals:
        mgr = ConnectionManager(cfg)
        server = HttpServer(create_app(mgr, cfg.api_key), host, port)  # a busy port fails here
        try:
            with mgr.start(cancel=lambda: signals.requested):  # SIGTERM cancels it
                server.start()
                logger.info(
                    "garbage collector set for many tenants: thresholds {}, {} objects frozen",
                    "/".join(map(str, gc.get_threshold())),
                    frozen,
                )
                count = len(mgr.statuses())
                click.echo(
                    f"wamgr serving as {cfg.instance_id} ({count} tenants known), HTTP API on "
                    f"{server.url}; SIGTERM or Ctrl-C stops it",
                    err=True,
                )
                if cfg.api_key is None:
                    click.echo(
                        "wamgr: no API key (WAMGR_API_KEY): the HTTP API answers every "
                        "request, so it listens on loopback only",
                        err=True,
                    )
                signals.wait()
                click.echo(
                    "wamgr stopping: closing links without logout, releasing leases", err=True
                )
                server.stop()  # first: no request may reach a manager that is stopping
        finally:
            server.stop()


for _command in (
    tenants,
    status,
    connect,
    reconnect,
    disconnect,
    logout,
    send,
    messages,
    pair,
    clear_auth,
    db,
    webhooks,
    locks,
    sim,
    sim_stats,
):
    main.add_command(_command)
