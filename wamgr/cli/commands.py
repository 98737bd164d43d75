"""``wamgr status``, the commands for the instance that runs a tenant (``connect``,
``reconnect``, ``disconnect``, ``logout``), and the outbound queue (``send``, ``messages``).

A command is a row in the database (:class:`~wamgr.store.commands.CommandStore`): the
instance that holds the tenant's lease applies it, or any running instance when none holds
it and the command wants the tenant connected. What is wanted of the tenant is written
first, so a command no instance applies still takes effect at the next claim.
"""

from __future__ import annotations

from typing import Any

import click

from wamgr.cli.context import checked_tenant_id, load_config, open_db, tenant_ids
from wamgr.cli.output import clock_time, print_json, print_table, print_tenants, tenant_json
from wamgr.clock import SystemClock
from wamgr.errors import UnknownTenant
from wamgr.outbound import OutboundQueue
from wamgr.status import Desired
from wamgr.store.commands import ANY_INSTANCE, Command, CommandStore
from wamgr.store.outbound import OutboundMessage, OutboundStatus, OutboundStore
from wamgr.store.tenants import TenantStore


@click.command()
@click.argument("tenant_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON: an object, or a list.")
@click.pass_context
def status(ctx: click.Context, tenant_id: str | None, as_json: bool) -> None:
    """Show the status of TENANT_ID, or of every tenant, as stored by the instances.

    \b
    Example:
      wamgr status shop-1 --json
    """
    one = checked_tenant_id(tenant_id) if tenant_id is not None else None
    with open_db(ctx) as db:
        store = TenantStore(db)
        if one is not None:
            record = store.get(one)
            if record is None:
                raise UnknownTenant(one)
            records = [record]
        else:
            records = store.all()
    if as_json:
        payload: Any = [tenant_json(r) for r in records]
        print_json(payload[0] if one is not None else payload)
        return
    print_tenants(records)


def _send(ctx: click.Context, tenant_ids: list[str], command: Command) -> None:
    """Want each tenant connected (connect, reconnect) or stopped (the others), send it
    ``command``, and say which instance will apply it.

    Raises UnknownTenant (exit 3) before anything is sent if a tenant other than one to
    connect is not known.
    """
    wanted = Desired.CONNECTED if command in (Command.CONNECT, Command.RECONNECT) else None
    with open_db(ctx) as database:
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


@click.command()
@click.argument("tenant_ids", metavar="TENANT...", nargs=-1, required=True, callback=tenant_ids)
@click.pass_context
def connect(ctx: click.Context, tenant_ids: list[str]) -> None:
    """Want TENANT connected and connect it now, on the instance that holds it or any running
    one (also the way out of conflict, failed and logged_out).

    \b
    Example:
      wamgr connect shop-1
    """
    _send(ctx, tenant_ids, Command.CONNECT)


@click.command()
@click.argument("tenant_ids", metavar="TENANT...", nargs=-1, required=True, callback=tenant_ids)
@click.pass_context
def reconnect(ctx: click.Context, tenant_ids: list[str]) -> None:
    """Close TENANT's link (no logout) and open a new one, on the instance that runs it.

    \b
    Example:
      wamgr reconnect shop-1
    """
    _send(ctx, tenant_ids, Command.RECONNECT)


@click.command()
@click.argument("tenant_ids", metavar="TENANT...", nargs=-1, required=True, callback=tenant_ids)
@click.pass_context
def disconnect(ctx: click.Context, tenant_ids: list[str]) -> None:
    """Close TENANT's link without logout and want it stopped (its device stays paired).

    \b
    Example:
      wamgr disconnect shop-1
    """
    _send(ctx, tenant_ids, Command.DISCONNECT)


@click.command()
@click.argument("tenant_ids", metavar="TENANT...", nargs=-1, required=True, callback=tenant_ids)
@click.pass_context
def logout(ctx: click.Context, tenant_ids: list[str]) -> None:
    """Unlink TENANT's device from the phone, clear its credentials and want it stopped.

    \b
    Example:
      wamgr logout shop-1
    """
    _send(ctx, tenant_ids, Command.LOGOUT)


def _message_json(message: OutboundMessage) -> dict[str, Any]:
    return {
        "message_id": message.message_id,
        "status": str(message.status),
        "to": message.to,
        "idempotency_key": message.idempotency_key,
        "wa_message_id": message.wa_message_id,
        "error": message.error,
        "attempts": message.attempts,
        "created_at": message.created_at.isoformat(),
        "sent_at": message.sent_at.isoformat() if message.sent_at else None,
    }


@click.command()
@click.argument("tenant_id", metavar="TENANT")
@click.argument("to")
@click.argument("text")
@click.option("--idempotency-key", help="Queue nothing if TENANT already has a message with it.")
@click.option("--expires-in", type=float, help="Seconds it may wait (default outbound_expires_in).")
@click.pass_context
def send(
    ctx: click.Context,
    tenant_id: str,
    to: str,
    text: str,
    idempotency_key: str | None,
    expires_in: float | None,
) -> None:
    """Queue TEXT for TO (a phone number or JID); the instance holding TENANT sends it once it
    is connected. Prints the message id.

    \b
    Example:
      wamgr send shop-1 +15551234567 "Your order has shipped" --idempotency-key order-42
    """
    tenant_id = checked_tenant_id(tenant_id)
    cfg = load_config(ctx)
    with open_db(ctx) as db:
        queue = OutboundQueue(OutboundStore(db, cfg.webhook_urls), SystemClock(), cfg)
        message = queue.add(
            tenant_id, to, text, idempotency_key=idempotency_key, expires_in=expires_in
        )
    click.echo(f"{message.message_id} {message.status}")


@click.command()
@click.argument("tenant_id", metavar="TENANT")
@click.option("--status", type=click.Choice([s.value for s in OutboundStatus]))
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.pass_context
def messages(
    ctx: click.Context, tenant_id: str, status: str | None, limit: int, as_json: bool
) -> None:
    """List TENANT's outbound messages, oldest first (those in --status only).

    \b
    Example:
      wamgr messages shop-1 --status queued
    """
    tenant_id = checked_tenant_id(tenant_id)
    cfg = load_config(ctx)
    with open_db(ctx) as db:
        queue = OutboundQueue(OutboundStore(db), SystemClock(), cfg)
        listed = queue.list(tenant_id, status, limit)
    if as_json:
        print_json([_message_json(m) for m in listed])
        return
    rows = [
        (
            m.message_id,
            str(m.status),
            m.to,
            clock_time(m.created_at),
            clock_time(m.sent_at),
            m.error or "-",
        )
        for m in listed
    ]
    print_table(("MESSAGE", "STATUS", "TO", "QUEUED", "SENT", "ERROR"), rows)
