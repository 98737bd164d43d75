"""The ``wamgr`` command: run the service and look after tenants from any shell.

Every command but ``serve`` works on the database directly, so it works from another
process (or host) while ``serve`` runs. Errors print one line, ``wamgr: <what to do>``, and
exit non-zero (the code depends on the error; see docs/troubleshooting.md).
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from wamgr import logging as wamgr_logging
from wamgr.config import Config
from wamgr.errors import UnknownTenant, WamgrError
from wamgr.manager import ConnectionManager
from wamgr.status import Desired, TenantState, validate_tenant_id
from wamgr.store.commands import ANY_INSTANCE, Command, CommandStore
from wamgr.store.db import Database, open_database
from wamgr.store.leases import Lease, LeaseStore
from wamgr.store.locks import ProcessingLock, ProcessingLocks, validate_lock_key
from wamgr.store.tenants import TenantRecord, TenantStore

_STATE_COLOURS = {
    TenantState.CONNECTED: "green",
    TenantState.CONNECTING: "cyan",
    TenantState.PAIRING: "cyan",
    TenantState.BACKOFF: "yellow",
    TenantState.STANDBY: "blue",
    TenantState.BANNED: "magenta",
    TenantState.CONFLICT: "red",
    TenantState.LOGGED_OUT: "red",
    TenantState.FAILED: "red",
}


class WamgrGroup(click.Group):
    """A click group that turns wamgr's errors into one line and their exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; WamgrError -> ``wamgr: message`` on stderr and its exit code."""
        try:
            return super().invoke(ctx)
        except WamgrError as exc:
            click.echo(f"wamgr: {exc.format_message()}", err=True)
            ctx.exit(exc.exit_code)


def _config(ctx: click.Context, **overrides: Any) -> Config:
    params = ctx.find_root().params
    return Config.load(
        params.get("config"),
        database_url=params.get("database_url"),
        home=params.get("home"),
        **overrides,
    )


@contextmanager
def _database(ctx: click.Context) -> Iterator[Database]:
    cfg = _config(ctx)
    db, close = open_database(cfg.database_url, cfg.home, timeout_s=cfg.call_timeout_s)
    try:
        yield db
    finally:
        close()


def _tenant_ids(_: click.Context, __: click.Parameter, values: tuple[str, ...]) -> list[str]:
    try:
        return [validate_tenant_id(v) for v in values]
    except WamgrError as exc:
        raise click.BadParameter(exc.format_message()) from exc


@click.group(cls=WamgrGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config", type=click.Path(dir_okay=False, path_type=Path), help="A wamgr.toml file."
)
@click.option(
    "--database-url", envvar="WAMGR_DATABASE_URL", help="PostgreSQL URL (default: embedded)."
)
@click.option(
    "--home",
    envvar="WAMGR_HOME",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of the embedded database (default ~/.wamgr).",
)
@click.option("--log-json", is_flag=True, help="Log one JSON object per line.")
@click.option("--log-level", default="INFO", show_default=True, help="DEBUG, INFO, WARNING…")
def main(
    config: Path | None,
    database_url: str | None,
    home: Path | None,
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
    wamgr_logging.configure(level=log_level.upper(), json=log_json)


@main.command()
@click.option(
    "--transport",
    help="neonize (real WhatsApp), sim (in-process simulator). Default: neonize.",
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
    type=click.IntRange(0, 65535),
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

    cfg = _config(ctx, transport=transport, instance_id=instance_id)
    check_binding(host, cfg.api_key)
    stop = threading.Event()
    _on_signals(lambda: stop.set())
    mgr = ConnectionManager(cfg)
    server = HttpServer(create_app(mgr, cfg.api_key), host, port)  # a busy port fails here
    try:
        with mgr:
            server.start()
            count = len(mgr.statuses())
            click.echo(
                f"wamgr serving as {cfg.instance_id} ({count} tenants known), HTTP API on "
                f"{server.url}; SIGTERM or Ctrl-C stops it",
                err=True,
            )
            if cfg.api_key is None:
                click.echo(
                    "wamgr: no API key (WAMGR_API_KEY): the HTTP API answers every request, "
                    "so it listens on loopback only",
                    err=True,
                )
            stop.wait()
            click.echo("wamgr stopping: closing links without logout, releasing leases", err=True)
            server.stop()
    finally:
        server.stop()


def _on_signals(handler: Callable[[], None]) -> None:
    def handle(signum: int, _: object) -> None:
        handler()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=7450, show_default=True, help="Port to listen on.")
@click.option("--manual-pair", is_flag=True, help="Wait for a scan instead of pairing at once.")
def sim(host: str, port: int, manual_pair: bool) -> None:
    """Serve a simulated WhatsApp over TCP until SIGTERM or SIGINT.

    Several `wamgr serve --transport sim://HOST:PORT` processes can share it; it counts
    every socket, so `wamgr sim-stats` proves no account ever had two at once.

    \b
    Example:
      wamgr sim --port 7450 &
      wamgr serve --transport sim://127.0.0.1:7450
    """
    from wamgr.transport.sim import SimWhatsApp
    from wamgr.transport.sim_server import SimServer

    stop = threading.Event()
    _on_signals(stop.set)
    server = SimServer(SimWhatsApp(auto_pair=not manual_pair), host, port).start()
    click.echo(f"simulated WhatsApp on {server.url}", err=True)
    stop.wait()
    server.stop()


@main.command("sim-stats")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=7450, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def sim_stats(host: str, port: int, as_json: bool) -> None:
    """Print what a running `wamgr sim` has seen: the most sockets one account ever had open
    at once (the promise: 1), accounts, and sockets open now.

    \b
    Example:
      wamgr sim-stats --port 7450 --json
    """
    from wamgr.transport.sim_server import fetch_stats

    try:
        stats = fetch_stats(host, port)
    except OSError as exc:
        raise click.ClickException(f"no simulator at {host}:{port} ({exc})") from exc
    if as_json:
        click.echo(json.dumps(stats))
    else:
        for key, value in stats.items():
            click.echo(f"{key}: {value}")


@main.group()
def tenants() -> None:
    """Add, list and remove tenants (works while serve runs elsewhere).

    \b
    Example:
      wamgr tenants add shop-1 && wamgr tenants list
    """


@tenants.command("add")
@click.argument("tenant_ids", nargs=-1, required=True, callback=_tenant_ids)
@click.pass_context
def tenants_add(ctx: click.Context, tenant_ids: list[str]) -> None:
    """Want TENANT_IDS connected; a running serve picks them up within its claim interval.

    \b
    Example:
      wamgr tenants add shop-1 shop-2
    """
    with _database(ctx) as db:
        store = TenantStore(db)
        for tenant_id in tenant_ids:
            changed = store.set_desired(tenant_id, Desired.CONNECTED)
            click.echo(f"{tenant_id}: {'added' if changed else 'already wanted connected'}")


@tenants.command("remove")
@click.argument("tenant_ids", nargs=-1, required=True, callback=_tenant_ids)
@click.option("--purge", is_flag=True, help="Also forget the tenant and its device JID.")
@click.pass_context
def tenants_remove(ctx: click.Context, tenant_ids: list[str], purge: bool) -> None:
    """Want TENANT_IDS stopped; the instance holding each closes its link (no logout).

    \b
    Example:
      wamgr tenants remove shop-1
    """
    with _database(ctx) as db:
        store = TenantStore(db)
        for tenant_id in tenant_ids:
            if purge:
                gone = store.delete(tenant_id)
                click.echo(f"{tenant_id}: {'purged' if gone else 'unknown'}")
            else:
                known = store.get(tenant_id) is not None
                store.set_desired(tenant_id, Desired.STOPPED)
                click.echo(f"{tenant_id}: {'removed' if known else 'unknown'}")


@tenants.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.pass_context
def tenants_list(ctx: click.Context, as_json: bool) -> None:
    """List tenants with what is wanted of them and their state.

    \b
    Example:
      wamgr tenants list --json
    """
    with _database(ctx) as db:
        records = TenantStore(db).all()
    if as_json:
        click.echo(json.dumps([_json(r) for r in records], indent=2))
        return
    for record in records:
        click.echo(f"{record.status.tenant_id}\t{record.desired}\t{record.status.state}")


@main.command()
@click.argument("tenant_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON: an object, or a list.")
@click.pass_context
def status(ctx: click.Context, tenant_id: str | None, as_json: bool) -> None:
    """Show the status of TENANT_ID, or of every tenant, as stored by the instances.

    \b
    Example:
      wamgr status shop-1 --json
    """
    if tenant_id is not None:
        _tenant_ids(ctx, None, (tenant_id,))  # type: ignore[arg-type]
    with _database(ctx) as db:
        store = TenantStore(db)
        if tenant_id is not None:
            record = store.get(tenant_id)
            if record is None:
                raise UnknownTenant(tenant_id)
            records = [record]
        else:
            records = store.all()
    if as_json:
        payload: Any = [_json(r) for r in records]
        click.echo(json.dumps(payload[0] if tenant_id is not None else payload, indent=2))
        return
    _print_table(records)


def _json(record: TenantRecord) -> dict[str, Any]:
    lease = record.lease_expires_at
    return {
        **record.status.to_json(),
        "desired": str(record.desired),
        "lease_expires_at": lease.isoformat() if lease else None,
    }


def _print_table(records: list[TenantRecord]) -> None:
    if not records:
        click.echo("no tenants (add one: wamgr tenants add TENANT)")
        return
    header = (
        "TENANT",
        "DESIRED",
        "STATE",
        "OWNER",
        "LEASE UNTIL",
        "ATTEMPT",
        "NEXT RETRY",
        "LAST ERROR",
    )
    rows = []
    for record in records:
        s = record.status
        rows.append(
            (
                s.tenant_id,
                str(record.desired),
                str(s.state),
                s.owner or "-",
                record.lease_expires_at.strftime("%H:%M:%S") if record.lease_expires_at else "-",
                str(s.attempt),
                s.next_retry_at.strftime("%H:%M:%S") if s.next_retry_at else "-",
                s.last_error or "-",
            )
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]

    def line(cells: tuple[str, ...], state: TenantState | None = None) -> str:
        parts = [cell.ljust(width) for cell, width in zip(cells, widths, strict=False)]
        if state is not None:
            parts[2] = click.style(parts[2], fg=_STATE_COLOURS.get(state))
        return "  ".join([*parts, cells[-1]])

    click.echo(line(header))
    for record, row in zip(records, rows, strict=True):
        click.echo(line(row, record.status.state))


# --- commands for the instance that runs a tenant ------------------------------------------


def _send_command(ctx: click.Context, tenant_ids: list[str], command: Command) -> None:
    wanted = Desired.CONNECTED if command in (Command.CONNECT, Command.RECONNECT) else None
    with _database(ctx) as database:
        store = TenantStore(database)
        if command is not Command.CONNECT:
            for tenant_id in tenant_ids:
                if store.get(tenant_id) is None:
                    raise UnknownTenant(tenant_id)
        commands = CommandStore(database)
        for tenant_id in tenant_ids:
            store.set_desired(tenant_id, wanted or Desired.STOPPED)
            target = commands.send(tenant_id, command, sender=None, anyone=wanted is not None)
            if target == ANY_INSTANCE:
                click.echo(f"{tenant_id}: {command} sent to any running instance (none holds it)")
            elif target is not None:
                click.echo(f"{tenant_id}: {command} sent to {target}, which holds it")
            else:
                nothing = "; nothing to log out" if command is Command.LOGOUT else ""
                click.echo(f"{tenant_id}: stopped (no instance runs it{nothing})")


@main.command()
@click.argument("tenant_ids", metavar="TENANT...", nargs=-1, required=True, callback=_tenant_ids)
@click.pass_context
def connect(ctx: click.Context, tenant_ids: list[str]) -> None:
    """Want TENANT connected and connect it now, on the instance that holds it or any running
    one (also the way out of conflict, failed and logged_out).

    \b
    Example:
      wamgr connect shop-1
    """
    _send_command(ctx, tenant_ids, Command.CONNECT)


@main.command()
@click.argument("tenant_ids", metavar="TENANT...", nargs=-1, required=True, callback=_tenant_ids)
@click.pass_context
def reconnect(ctx: click.Context, tenant_ids: list[str]) -> None:
    """Close TENANT's link (no logout) and open a new one, on the instance that runs it.

    \b
    Example:
      wamgr reconnect shop-1
    """
    _send_command(ctx, tenant_ids, Command.RECONNECT)


@main.command()
@click.argument("tenant_ids", metavar="TENANT...", nargs=-1, required=True, callback=_tenant_ids)
@click.pass_context
def disconnect(ctx: click.Context, tenant_ids: list[str]) -> None:
    """Close TENANT's link without logout and want it stopped (its device stays paired).

    \b
    Example:
      wamgr disconnect shop-1
    """
    _send_command(ctx, tenant_ids, Command.DISCONNECT)


@main.command()
@click.argument("tenant_ids", metavar="TENANT...", nargs=-1, required=True, callback=_tenant_ids)
@click.pass_context
def logout(ctx: click.Context, tenant_ids: list[str]) -> None:
    """Unlink TENANT's device from the phone, clear its credentials and want it stopped.

    \b
    Example:
      wamgr logout shop-1
    """
    _send_command(ctx, tenant_ids, Command.LOGOUT)


# --- pairing and credentials --------------------------------------------------------------


@main.command()
@click.argument("tenant_id", metavar="TENANT")
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=180.0,
    show_default=True,
    help="Seconds to wait for the phone (WhatsApp shows codes for 160 s).",
)
@click.option("--phone", help="Also show a pair code for this number (country code first).")
@click.option("--transport", help="neonize (real WhatsApp) or sim. Default: neonize.")
@click.pass_context
def pair(
    ctx: click.Context, tenant_id: str, timeout: float, phone: str | None, transport: str | None
) -> None:
    """Pair TENANT with a phone: show its QR code here (and a pair code with --phone) until
    the phone has linked it, then leave it wanted connected for `wamgr serve`.

    Runs the tenant in this process for the while; refused if a live instance holds it
    (pair it there: GET /api/tenants/TENANT/qr).

    \b
    Example:
      wamgr pair shop-1
      wamgr pair shop-1 --phone +15551234567
    """
    from wamgr.pairing import pair_tenant
    from wamgr.status import normalise_phone

    (tenant_id,) = _tenant_ids(ctx, None, (tenant_id,))  # type: ignore[arg-type]
    if phone is not None:
        phone = normalise_phone(phone)
    cfg = _config(ctx, transport=transport, claim_tenants=False)
    with ConnectionManager(cfg) as mgr:
        status = pair_tenant(mgr, tenant_id, timeout, phone, show=click.echo)
        click.echo(f"{tenant_id}: paired and connected as {status.jid}")
    click.echo(f"{tenant_id}: wanted connected; a running `wamgr serve` takes it from here")


@main.command("clear-auth")
@click.argument("tenant_ids", metavar="[TENANT...]", nargs=-1, callback=_tenant_ids)
@click.option("--all", "clear_all", is_flag=True, help="Every tenant that is not running.")
@click.option("--transport", help="neonize (real WhatsApp) or sim. Default: neonize.")
@click.pass_context
def clear_auth(
    ctx: click.Context, tenant_ids: list[str], clear_all: bool, transport: str | None
) -> None:
    """Delete TENANT's device keys and JID and park it in logged_out (pair it again after).

    Only that tenant's device is touched; other tenants, running or not, keep theirs. A tenant
    that a live instance holds is refused: clear it there, or stop it first.

    \b
    Example:
      wamgr clear-auth shop-1
      wamgr clear-auth --all
    """
    from wamgr.credentials import clear_credentials
    from wamgr.errors import HeldElsewhere
    from wamgr.transport import resolve_transport

    if clear_all == bool(tenant_ids):
        raise click.UsageError("give TENANT..., or --all to clear every tenant not running")
    cfg = _config(ctx, transport=transport)
    refused: list[HeldElsewhere] = []
    with _database(ctx) as database:
        if clear_all:
            tenant_ids = [record.status.tenant_id for record in TenantStore(database).all()]
        chosen, owned = resolve_transport(cfg, database.url)
        try:
            for tenant_id in tenant_ids:
                try:
                    clear_credentials(database, chosen, tenant_id)
                except HeldElsewhere as exc:
                    if not clear_all:
                        raise
                    refused.append(exc)
                    continue
                click.echo(f"{tenant_id}: credentials cleared; logged_out until paired again")
        finally:
            if owned:
                chosen.close()
    for exc in refused:
        click.echo(f"wamgr: {exc.format_message()}", err=True)
    if refused:
        ctx.exit(HeldElsewhere.exit_code)


@main.group()
def db() -> None:
    """Database maintenance.

    \b
    Example:
      wamgr db migrate
    """


@db.command("migrate")
@click.pass_context
def db_migrate(ctx: click.Context) -> None:
    """Apply pending migrations (serve does this on start too).

    \b
    Example:
      wamgr --database-url postgresql://wamgr@db/wamgr db migrate
    """
    with _database(ctx) as database, database.connection() as conn:  # opening migrates
        rows = conn.execute(
            "SELECT version, name, applied_at FROM wamgr_schema_migrations ORDER BY version"
        ).fetchall()
    for version, name, applied_at in rows:
        click.echo(f"{version:04d}  {name}  applied {applied_at:%Y-%m-%d %H:%M:%S}")
    click.echo("database is up to date")


# --- webhooks ------------------------------------------------------------------------------


@main.group()
def webhooks() -> None:
    """Look at webhook deliveries and re-enable an endpoint that answered 410 Gone.

    \b
    Example:
      wamgr webhooks status
    """


@webhooks.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.pass_context
def webhooks_status(ctx: click.Context, as_json: bool) -> None:
    """Per endpoint: deliveries pending, delivered, given up, and whether it is disabled.

    \b
    Example:
      wamgr webhooks status --json
    """
    with _database(ctx) as database, database.connection() as conn:
        rows = conn.execute(
            "SELECT e.url, count(o.id) FILTER (WHERE o.delivered_at IS NULL"
            "   AND o.gave_up_at IS NULL),"
            " count(o.id) FILTER (WHERE o.delivered_at IS NOT NULL),"
            " count(o.id) FILTER (WHERE o.gave_up_at IS NOT NULL), d.disabled_at"
            " FROM (SELECT endpoint AS url FROM wamgr_outbox UNION"
            "       SELECT url FROM wamgr_webhook_endpoints) e"
            " LEFT JOIN wamgr_outbox o ON o.endpoint = e.url"
            " LEFT JOIN wamgr_webhook_endpoints d ON d.url = e.url"
            " GROUP BY e.url, d.disabled_at ORDER BY e.url"
        ).fetchall()
    out = [
        {
            "endpoint": url,
            "pending": pending,
            "delivered": delivered,
            "given_up": given_up,
            "disabled_at": disabled.isoformat() if disabled else None,
        }
        for url, pending, delivered, given_up, disabled in rows
    ]
    if as_json:
        click.echo(json.dumps(out, indent=2))
    elif not out:
        click.echo("no webhook deliveries (set WAMGR_WEBHOOK_URL and WAMGR_WEBHOOK_SECRET)")
    else:
        _print_rows(
            ("ENDPOINT", "PENDING", "DELIVERED", "GIVEN UP", "DISABLED SINCE (UTC)"),
            [
                (
                    e["endpoint"],
                    str(e["pending"]),
                    str(e["delivered"]),
                    str(e["given_up"]),
                    _utc(disabled) if disabled else "-",
                )
                for e, (*_, disabled) in zip(out, rows, strict=True)
            ],
        )


@webhooks.command("enable")
@click.argument("url")
@click.pass_context
def webhooks_enable(ctx: click.Context, url: str) -> None:
    """Send events to URL again after it answered 410 Gone (events from now on).

    \b
    Example:
      wamgr webhooks enable https://crm.example.com/hooks/wamgr
    """
    from wamgr.store.outbox import Outbox

    with _database(ctx) as database:
        was = Outbox(database).enable_endpoint(url)
    click.echo(f"{url}: {'enabled' if was else 'was not disabled'}")


# --- locks: tenant leases and processing locks ---------------------------------------------


@main.group()
def locks() -> None:
    """Show and clear tenant leases and processing locks (works while serve runs elsewhere).

    A lease says which instance may hold a tenant's socket; a processing lock is one an
    application took with ConnectionManager.locks (e.g. around answering a conversation).

    \b
    Example:
      wamgr locks list                  # tenant leases
      wamgr locks list --processing     # processing locks
    """


@locks.command("list", short_help="List tenant leases, or processing locks.")
@click.option("--processing", is_flag=True, help="List processing locks, not tenant leases.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.pass_context
def locks_list(ctx: click.Context, processing: bool, as_json: bool) -> None:
    """List tenant leases (tenant, owner, token, expiry), or processing locks with --processing.

    Expiry is judged by the database's clock; expired rows stay until taken over or swept.

    \b
    Example:
      wamgr locks list --processing --json
    """
    with _database(ctx) as database:
        if processing:
            _print_processing_locks(ProcessingLocks(database).all(), as_json)
            return
        leases = LeaseStore(database).all()
        now = _database_now(database)
    out = [
        {
            "tenant_id": lease.tenant_id,
            "owner": lease.owner,
            "token": lease.token,
            "expires_at": lease.expires_at.isoformat(),
            "expired": lease.expires_at <= now,
        }
        for lease in leases
    ]
    if as_json:
        click.echo(json.dumps(out, indent=2))
    elif not out:
        click.echo("no tenant leases")
    else:
        header = ("TENANT", "OWNER", "TOKEN", "EXPIRES AT (UTC)", "STATE")
        _print_rows(
            header,
            [
                (
                    lease.tenant_id,
                    lease.owner,
                    str(lease.token),
                    _utc(lease.expires_at),
                    "expired" if entry["expired"] else "held",
                )
                for lease, entry in zip(leases, out, strict=True)
            ],
        )


def _print_processing_locks(rows: list[ProcessingLock], as_json: bool) -> None:
    if as_json:
        out = [
            {
                "key": row.key,
                "token": row.token,
                "owner": row.owner,
                "acquired_at": row.acquired_at.isoformat(),
                "expires_at": row.expires_at.isoformat(),
                "expired": row.expired,
            }
            for row in rows
        ]
        click.echo(json.dumps(out, indent=2))
        return
    if not rows:
        click.echo("no processing locks")
        return
    header = ("KEY", "TOKEN", "OWNER", "EXPIRES AT (UTC)", "STATE")
    _print_rows(
        header,
        [
            (
                _shown_key(row.key),
                str(row.token),
                row.owner or "-",
                _utc(row.expires_at),
                "expired" if row.expired else "held",
            )
            for row in rows
        ],
    )


@locks.command("clear", short_help="Clear a tenant lease, every lease, or a processing lock.")
@click.argument("target", metavar="[TENANT|KEY]", required=False)
@click.option("--processing", is_flag=True, help="Clear the processing lock KEY instead.")
@click.option("--all", "clear_all", is_flag=True, help="Clear every tenant lease.")
@click.pass_context
def locks_clear(ctx: click.Context, target: str | None, processing: bool, clear_all: bool) -> None:
    """Remove TENANT's lease (every lease with --all), or the processing lock KEY.

    A live owner of a cleared lease fences itself: at its next renewal it finds the lease
    gone and closes the tenant's link (no logout); any instance may then claim the tenant.
    A live holder of a cleared processing lock is no longer protected: another claim may
    take the key at once, and the old holder's release and extend return False.

    \b
    Example:
      wamgr locks clear shop-1
      wamgr locks clear --processing 'shop-1:15550001111'
    """
    if processing:
        if clear_all or target is None:
            raise click.UsageError("--processing clears one lock: give its KEY (and no --all)")
        try:
            key = validate_lock_key(target)
        except WamgrError as exc:
            raise click.BadParameter(exc.format_message(), param_hint="KEY") from exc
        with _database(ctx) as database:
            gone = ProcessingLocks(database).clear(key)
        _report_cleared_processing_lock(key, gone)
        return
    if clear_all == (target is not None):
        raise click.UsageError("give one TENANT, or --all to clear every lease")
    if target is not None:
        _tenant_ids(ctx, None, (target,))  # type: ignore[arg-type]
    with _database(ctx) as database:
        store = LeaseStore(database)
        if target is None:
            before = store.all()
        else:
            lease = store.holder(target)
            before = [lease] if lease is not None else []
        now = _database_now(database)
        cleared = store.clear(target) if before else 0
    if target is None:
        click.echo(f"cleared {cleared} tenant leases")
    elif not before:
        click.echo(f"{target}: no lease")
    else:
        click.echo(f"{target}: lease cleared (owner {before[0].owner}, token {before[0].token})")
    _warn_live_leases([lease for lease in before if lease.expires_at > now])


def _report_cleared_processing_lock(key: str, gone: ProcessingLock | None) -> None:
    shown = _shown_key(key)
    if gone is None:
        click.echo(f"no processing lock {shown}")
        return
    owner = f", owner {gone.owner}" if gone.owner else ""
    click.echo(f"processing lock {shown} cleared (token {gone.token}{owner})")
    if not gone.expired:
        click.echo(
            f"wamgr: warning: its claim was live until {_utc(gone.expires_at)} UTC; if its "
            "holder is still working it is no longer protected: another claim may take the key "
            "now, and the holder's release and extend will return False",
            err=True,
        )


def _warn_live_leases(live: list[Lease]) -> None:
    if not live:
        return
    owners = ", ".join(sorted({lease.owner for lease in live}))
    tenants = ", ".join(lease.tenant_id for lease in live)
    click.echo(
        f"wamgr: warning: unexpired lease of {tenants} (owner {owners}); an owner still "
        "running fences itself at its next renewal: it closes the link without logout and "
        "goes to standby, and any instance may then claim the tenant",
        err=True,
    )


def _database_now(database: Database) -> datetime:
    with database.connection() as conn:
        row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    return row[0]


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _shown_key(key: str) -> str:
    """A key as printed: as is when printable, else its repr (so it fits on one line)."""
    return key if key.isprintable() else repr(key)


def _print_rows(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    for cells in [header, *rows]:
        parts = [cell.ljust(width) for cell, width in zip(cells, widths, strict=False)]
        click.echo("  ".join([*parts, cells[-1]]))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(prog_name="wamgr"))
