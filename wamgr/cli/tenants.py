"""``wamgr tenants add|remove|list``: what is wanted of each tenant, written to the database.

A running ``wamgr serve`` (on any host sharing the database) acts on it: its claim loop
picks up tenants wanted connected, and the instance holding a tenant wanted stopped closes
its link.
"""

from __future__ import annotations

import click

from wamgr.cli.context import open_db, tenant_ids
from wamgr.cli.output import print_json, tenant_json
from wamgr.errors import UnknownTenant
from wamgr.status import Desired
from wamgr.store.tenants import TenantStore


@click.group()
def tenants() -> None:
    """Add, list and remove tenants (works while serve runs elsewhere).

    \b
    Example:
      wamgr tenants add shop-1 && wamgr tenants list
    """


@tenants.command("add")
@click.argument("tenant_ids", nargs=-1, required=True, callback=tenant_ids)
@click.pass_context
def tenants_add(ctx: click.Context, tenant_ids: list[str]) -> None:
    """Want TENANT_IDS connected; a running serve picks them up within its claim interval.

    \b
    Example:
      wamgr tenants add shop-1 shop-2
    """
    with open_db(ctx) as db:
        store = TenantStore(db)
        for tenant_id in tenant_ids:
            changed = store.set_desired(tenant_id, Desired.CONNECTED)
            click.echo(f"{tenant_id}: {'added' if changed else 'already wanted connected'}")


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
