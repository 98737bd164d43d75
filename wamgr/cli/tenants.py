"""``wamgr tenants add|set|remove|list``: what is wanted of each tenant and its settings,
written to the database.

A running ``wamgr serve`` (on any host sharing the database) acts on it: its claim loop
picks up tenants wanted connected, and the instance holding a tenant wanted stopped closes
its link.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from wamgr.cli.context import checked_tenant_id, open_db, tenant_ids
from wamgr.cli.output import print_json, tenant_json
from wamgr.errors import InvalidSetting, UnknownTenant
from wamgr.status import Desired
from wamgr.store.tenant_settings import TenantSettingsStore
from wamgr.store.tenants import TenantStore


@click.group()
def tenants() -> None:
    """Add, list and remove tenants (works while serve runs elsewhere).

    \b
    Example:
      wamgr tenants add shop-1 && wamgr tenants list
    """


def setting_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options that set a tenant's settings (see docs/operations.md)."""
    options = [
        click.option("--proxy", help="socks5://[user:pass@]host:port or http://...; '' clears."),
        click.option(
            "--webhook",
            "webhooks",
            multiple=True,
            help="The tenant's own webhook URL (repeatable; replaces the list; '' clears).",
        ),
        click.option("--events", help="Comma-separated events the --webhook URLs get (all)."),
        click.option(
            "--webhook-secret",
            envvar="WAMGR_TENANT_WEBHOOK_SECRET",
            help="whsec_ secret of the --webhook URLs (env WAMGR_TENANT_WEBHOOK_SECRET).",
        ),
        click.option("--send-rate", type=float, help="Messages per minute."),
        click.option("--send-burst", type=int, help="Messages sent back to back first."),
        click.option("--metadata", help="Free JSON object for the application; '' clears."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def setting_changes(
    proxy: str | None,
    webhooks: tuple[str, ...],
    events: str | None,
    webhook_secret: str | None,
    send_rate: float | None,
    send_burst: int | None,
    metadata: str | None,
) -> dict[str, Any]:
    """The settings named on the command line, as ``TenantSettings.changed`` takes them."""
    changes: dict[str, Any] = {}
    if proxy is not None:
        changes["proxy"] = proxy or None
    if (events or webhook_secret) and not webhooks:
        raise InvalidSetting("webhooks", "--events and --webhook-secret go with --webhook URL")
    if webhooks:
        urls = [url for url in webhooks if url]
        changes["webhooks"] = [
            {"url": url, "events": events or None, "secret": webhook_secret} for url in urls
        ]
    if send_rate is not None:
        changes["send_rate"] = send_rate
    if send_burst is not None:
        changes["send_burst"] = send_burst
    if metadata is not None:
        try:
            changes["metadata"] = json.loads(metadata) if metadata else None
        except json.JSONDecodeError as exc:
            raise InvalidSetting("metadata", f"not JSON: {exc.msg}") from None
    return changes


@tenants.command("add")
@click.argument("tenant_ids", nargs=-1, required=True, callback=tenant_ids)
@setting_options
@click.pass_context
def tenants_add(ctx: click.Context, tenant_ids: list[str], **options: Any) -> None:
    """Want TENANT_IDS connected, with the settings given; a running serve picks them up
    within its claim interval (a new tenant's first dial already uses its proxy).

    \b
    Examples:
      wamgr tenants add shop-1 shop-2
      wamgr tenants add shop-3 --proxy socks5://user:pass@10.0.0.5:1080 \\
          --webhook https://crm.example.com/hooks --events message.received,message.ack
    """
    changes = setting_changes(**options)
    with open_db(ctx) as db:
        store = TenantStore(db)
        settings = TenantSettingsStore(db)
        for tenant_id in tenant_ids:
            if changes:
                current = settings.get(tenant_id)
                settings.put(tenant_id, current.changed(**changes), create=True)
            changed = store.set_desired(tenant_id, Desired.CONNECTED)
            click.echo(f"{tenant_id}: {'added' if changed else 'already wanted connected'}")


@tenants.command("set")
@click.argument("tenant_id", callback=lambda _c, _p, value: checked_tenant_id(value))
@setting_options
@click.option("--json", "as_json", is_flag=True, help="Print the settings as JSON.")
@click.pass_context
def tenants_set(ctx: click.Context, tenant_id: str, as_json: bool, **options: Any) -> None:
    """Change TENANT_ID's settings (only those given) and print them, secrets masked. A new
    proxy is used from the tenant's next dial (`wamgr reconnect TENANT` applies it now).

    \b
    Examples:
      wamgr tenants set shop-1 --send-rate 10 --send-burst 3
      wamgr tenants set shop-1 --proxy ''          # dial directly again
    """
    changes = setting_changes(**options)
    with open_db(ctx) as db:
        settings = TenantSettingsStore(db)
        updated = settings.get(tenant_id).changed(**changes)
        if changes:
            settings.put(tenant_id, updated)
        elif TenantStore(db).get(tenant_id) is None:
            raise UnknownTenant(tenant_id)
    if as_json:
        print_json(updated.shown())
        return
    for name, value in updated.shown().items():
        click.echo(f"{name}\t{json.dumps(value)}")


@tenants.command("remove")
@click.argument("tenant_ids", nargs=-1, required=True, callback=tenant_ids)
@click.option("--purge", is_flag=True, help="Also forget the tenant and its device JID.")
@click.pass_context
def tenants_remove(ctx: click.Context, tenant_ids: list[str], purge: bool) -> None:
    """Want TENANT_IDS stopped; the instance holding each closes its link (no logout).

    An id that is not known is reported and the exit code is 3, as for `wamgr status`,
    after the known ones are removed.

    \b
    Example:
      wamgr tenants remove shop-1
    """
    unknown = []
    with open_db(ctx) as db:
        store = TenantStore(db)
        for tenant_id in tenant_ids:
            if purge:
                known = store.delete(tenant_id)
                click.echo(f"{tenant_id}: {'purged' if known else 'unknown'}")
            else:
                known = store.get(tenant_id) is not None
                store.set_desired(tenant_id, Desired.STOPPED)
                click.echo(f"{tenant_id}: {'removed' if known else 'unknown'}")
            if not known:
                unknown.append(tenant_id)
    if unknown:
        click.echo(f"wamgr: nothing to remove: unknown tenant {', '.join(unknown)}", err=True)
        ctx.exit(UnknownTenant.exit_code)


@tenants.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.pass_context
def tenants_list(ctx: click.Context, as_json: bool) -> None:
    """List tenants with what is wanted of them and their state.

    \b
    Example:
      wamgr tenants list --json
    """
    with open_db(ctx) as db:
        records = TenantStore(db).all()
    if as_json:
        print_json([tenant_json(r) for r in records])
        return
    for record in records:
        click.echo(f"{record.status.tenant_id}\t{record.desired}\t{record.status.state}")
