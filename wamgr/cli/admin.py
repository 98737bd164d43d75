"""Maintenance from the shell: ``wamgr db``, ``wamgr webhooks`` and ``wamgr locks``.

Each works on the database alone, so it works while ``serve`` runs elsewhere; the SQL
lives in the store modules.
"""

from __future__ import annotations

import click

from wamgr.cli.context import checked_tenant_id, open_db
from wamgr.cli.output import print_json, print_table, shown_key, utc
from wamgr.errors import DeliveryNotFound, WamgrError
from wamgr.store.leases import Lease, LeaseStore
from wamgr.store.locks import ProcessingLock, ProcessingLocks, validate_lock_key
from wamgr.store.outbox import Outbox
from wamgr.webhooks.sender import shown_url

# --- db ------------------------------------------------------------------------------------


@click.group()
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
    with open_db(ctx) as database:  # opening migrates
        applied = database.applied_migrations()
    for version, name, applied_at in applied:
        click.echo(f"{version:04d}  {name}  applied {applied_at:%Y-%m-%d %H:%M:%S}")
    click.echo("database is up to date")


# --- webhooks ------------------------------------------------------------------------------


@click.group()
def webhooks() -> None:
    """Look at webhook deliveries, send dead ones again, re-enable an endpoint (410 Gone).

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
    with open_db(ctx) as database:
        summaries = Outbox(database).endpoint_summaries()
    if as_json:
        print_json(
            [
                {
                    "endpoint": s.url,
                    "pending": s.pending,
                    "delivered": s.delivered,
                    "given_up": s.given_up,
                    "disabled_at": s.disabled_at.isoformat() if s.disabled_at else None,
                }
                for s in summaries
            ]
        )
    elif not summaries:
        click.echo("no webhook deliveries (set WAMGR_WEBHOOK_URL and WAMGR_WEBHOOK_SECRET)")
    else:
        print_table(
            ("ENDPOINT", "PENDING", "DELIVERED", "GIVEN UP", "DISABLED SINCE (UTC)"),
            [
                (
                    s.url,
                    str(s.pending),
                    str(s.delivered),
                    str(s.given_up),
                    utc(s.disabled_at) if s.disabled_at else "-",
                )
                for s in summaries
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
    with open_db(ctx) as database:
        was = Outbox(database).enable_endpoint(url)
    click.echo(f"{url}: {'enabled' if was else 'was not disabled'}")


@webhooks.command("dead")
@click.option("--tenant", "tenant_id", help="Only this tenant's deliveries.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.pass_context
def webhooks_dead(ctx: click.Context, tenant_id: str | None, limit: int, as_json: bool) -> None:
    """Deliveries given up (attempts used up, or endpoint disabled), newest first; they are
    kept 30 days and sent again with `wamgr webhooks retry`.

    \b
    Example:
      wamgr webhooks dead --tenant shop-1
    """
    if tenant_id is not None:
        tenant_id = checked_tenant_id(tenant_id)
    with open_db(ctx) as database:
        dead = Outbox(database).deliveries("dead", tenant_id, limit)
    if as_json:
        print_json(
            [
                {
                    "id": d.id,
                    "webhook_id": d.webhook_id,
                    "endpoint": shown_url(d.endpoint),
                    "event_type": d.event_type,
                    "tenant_id": d.tenant_id,
                    "attempts": d.attempts,
                    "last_status": d.last_status,
                    "last_error": d.last_error,
                    "gave_up_at": d.gave_up_at.isoformat() if d.gave_up_at else None,
                }
                for d in dead
            ]
        )
    elif not dead:
        click.echo("no dead webhook deliveries")
    else:
        print_table(
            ("ID", "EVENT", "TENANT", "ENDPOINT", "ATTEMPTS", "GAVE UP (UTC)", "LAST ERROR"),
            [
                (
                    str(d.id),
                    d.event_type,
                    d.tenant_id or "-",
                    shown_url(d.endpoint),
                    str(d.attempts),
                    utc(d.gave_up_at) if d.gave_up_at else "-",
                    (d.last_error or "-")[:60],
                )
                for d in dead
            ],
        )


@webhooks.command("retry")
@click.argument("delivery_ids", nargs=-1, type=click.IntRange(min=1))
@click.option("--all", "retry_all", is_flag=True, help="Every dead delivery.")
@click.pass_context
def webhooks_retry(ctx: click.Context, delivery_ids: tuple[int, ...], retry_all: bool) -> None:
    """Send dead deliveries again (each keeps its webhook-id); a running serve posts them
    within a few seconds. Deliveries to a disabled endpoint stay dead: enable it first.

    \b
    Examples:
      wamgr webhooks retry 1042 1043
      wamgr webhooks retry --all
    """
    if bool(delivery_ids) == retry_all:
        raise click.UsageError("give delivery IDs or --all (not both)")
    with open_db(ctx) as database:
        retried = Outbox(database).retry_dead(None if retry_all else list(delivery_ids))
    missing = sorted(set(delivery_ids) - set(retried))
    click.echo(f"retried {len(retried)} deliveries" + (f": {retried}" if retried else ""))
    if missing:
        raise DeliveryNotFound(missing[0])


# --- locks: tenant leases and processing locks ---------------------------------------------


@click.group()
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
    with open_db(ctx) as database:
        if processing:
            _print_processing_locks(ProcessingLocks(database).all(), as_json)
            return
        store = LeaseStore(database)
        leases = store.all()
        now = store.database_now()
    if as_json:
        print_json(
            [
                {
                    "tenant_id": lease.tenant_id,
                    "owner": lease.owner,
                    "token": lease.token,
                    "expires_at": lease.expires_at.isoformat(),
                    "expired": lease.expires_at <= now,
                }
                for lease in leases
            ]
        )
    elif not leases:
        click.echo("no tenant leases")
    else:
        print_table(
            ("TENANT", "OWNER", "TOKEN", "EXPIRES AT (UTC)", "STATE"),
            [
                (
                    lease.tenant_id,
                    lease.owner,
                    str(lease.token),
                    utc(lease.expires_at),
                    "expired" if lease.expires_at <= now else "held",
                )
                for lease in leases
            ],
        )


def _print_processing_locks(rows: list[ProcessingLock], as_json: bool) -> None:
    if as_json:
        print_json(
            [
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
        )
        return
    if not rows:
        click.echo("no processing locks")
        return
    print_table(
        ("KEY", "TOKEN", "OWNER", "EXPIRES AT (UTC)", "STATE"),
        [
            (
                shown_key(row.key),
                str(row.token),
                row.owner or "-",
                utc(row.expires_at),
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
        with open_db(ctx) as database:
            gone = ProcessingLocks(database).clear(key)
        _report_cleared_processing_lock(key, gone)
        return
    if clear_all == (target is not None):
        raise click.UsageError("give one TENANT, or --all to clear every lease")
    if target is not None:
        target = checked_tenant_id(target)
    with open_db(ctx) as database:
        store = LeaseStore(database)
        if target is None:
            before = store.all()
        else:
            lease = store.holder(target)
            before = [lease] if lease is not None else []
        now = store.database_now()
        cleared = store.clear(target) if before else 0
    if target is None:
        click.echo(f"cleared {cleared} tenant leases")
    elif not before:
        click.echo(f"{target}: no lease")
    else:
        click.echo(f"{target}: lease cleared (owner {before[0].owner}, token {before[0].token})")
    _warn_live_leases([lease for lease in before if lease.expires_at > now])


def _report_cleared_processing_lock(key: str, gone: ProcessingLock | None) -> None:
    shown = shown_key(key)
    if gone is None:
        click.echo(f"no processing lock {shown}")
        return
    owner = f", owner {gone.owner}" if gone.owner else ""
    click.echo(f"processing lock {shown} cleared (token {gone.token}{owner})")
    if not gone.expired:
        click.echo(
            f"wamgr: warning: its claim was live until {utc(gone.expires_at)} UTC; if its "
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
