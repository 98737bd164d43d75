"""``wamgr pair`` and ``wamgr clear-auth``: linking a tenant's device, and forgetting it.

:func:`pair_tenant` is the loop behind ``wamgr pair``: it connects a tenant on a manager of
this process and shows its QR codes (or a pair code) until the phone has linked it. A tenant
that a live instance holds is paired there: the QR and the pair code are asked of that
instance (forwarded calls) and shown here. The HTTP API pairs through
``GET /api/tenants/{id}/qr`` (:mod:`wamgr.qr`). ``wamgr clear-auth`` of a tenant a live
instance holds is carried out by that instance too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import click

from wamgr.cli.context import checked_tenant_id, load_config, open_db, tenant_ids
from wamgr.errors import HeldElsewhere, PairingFailed
from wamgr.forwarding import CallKind, standalone_caller
from wamgr.local_tenants import Deadline
from wamgr.manager import ConnectionManager
from wamgr.qr import qr_text
from wamgr.status import TenantState, TenantStatus, normalise_phone
from wamgr.store.db import Database
from wamgr.store.tenants import TenantStore

#: Seconds between two looks at the tenant while pairing.
POLL_S = 0.25

#: States a pairing does not come back from by itself.
_GIVEN_UP = frozenset(
    {
        TenantState.LOGGED_OUT,
        TenantState.FAILED,
        TenantState.CONFLICT,
        TenantState.BANNED,
        TenantState.STANDBY,
        TenantState.STOPPED,
    }
)


def pair_tenant(
    mgr: ConnectionManager,
    tenant_id: str,
    timeout_s: float,
    phone: str | None = None,
    show: Callable[[str], None] = print,
) -> TenantStatus:
    """Connect ``tenant_id`` on ``mgr`` and show each QR (or, with ``phone``, a pair code)
    through ``show`` until the tenant is connected; returns that status.

    A tenant that another live instance holds is paired there: its QR (or pair code) is
    asked of that instance and shown here (HolderNotAnswering, naming it, if it does not
    answer). Raises HeldElsewhere if another instance took the tenant while this one was
    connecting it, PairingFailed if the pairing ends in a parked state (QR not scanned in
    time, refused...) or is not done within ``timeout_s``.
    """
    holder = mgr.leases_store.live_owner(tenant_id)
    if holder is not None and holder != mgr.config.instance_id:
        show(f"{tenant_id} is held by instance {holder}: pairing it there")
        mgr.qr(tenant_id)  # the holder answers, or HolderNotAnswering names it
        status = mgr.status(tenant_id)
    else:
        status = mgr.connect(tenant_id)
    if status.state is TenantState.STANDBY:
        raise HeldElsewhere(tenant_id, status.owner or "another instance", "pair it")
    if status.jid:
        show(f"{tenant_id} is paired as {status.jid} already; connecting it")
    deadline = time.monotonic() + timeout_s
    shown_qr: str | None = None
    code_shown = False
    warned: str | None = None
    pause = threading.Event()
    while True:
        status = mgr.status(tenant_id)
        if status.state is TenantState.CONNECTED:
            return status
        if status.state in _GIVEN_UP:
            raise PairingFailed(tenant_id, str(status.state), status.last_error)
        if status.state is TenantState.BACKOFF and status.last_error != warned:
            warned = status.last_error
            show(f"could not connect ({status.last_error}); retrying at {status.next_retry_at}")
        if status.state is TenantState.PAIRING:
            qr = mgr.qr(tenant_id)
            if qr and qr != shown_qr:
                shown_qr = qr
                show(qr_text(qr))
                show("Scan it on the phone: WhatsApp > Linked devices > Link a device")
            if phone and qr and not code_shown:
                code = mgr.pair_code(tenant_id, phone)
                code_shown = True
                show(
                    f"Pair code for {phone}: {code}  (on the phone: Linked devices > "
                    "Link a device > Link with phone number instead)"
                )
        if time.monotonic() >= deadline:
            why = f"no phone linked the device within {timeout_s:g} s"
            if status.last_error:
                why += f" (last error: {status.last_error})"
            raise PairingFailed(tenant_id, str(status.state), why)
        pause.wait(POLL_S)


@click.command()
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

    Runs the tenant in this process for the while; if a live instance holds it, that
    instance pairs it and its QR (or pair code) is shown here.

    \b
    Example:
      wamgr pair shop-1
      wamgr pair shop-1 --phone +15551234567
    """
    tenant_id = checked_tenant_id(tenant_id)
    if phone is not None:
        phone = normalise_phone(phone)
    cfg = load_config(ctx, transport=transport, claim_tenants=False)
    with ConnectionManager(cfg) as mgr:
        status = pair_tenant(mgr, tenant_id, timeout, phone, show=click.echo)
        click.echo(f"{tenant_id}: paired and connected as {status.jid}")
    click.echo(f"{tenant_id}: wanted connected; a running `wamgr serve` takes it from here")


@click.command("clear-auth")
@click.argument("tenant_ids", metavar="[TENANT...]", nargs=-1, callback=tenant_ids)
@click.option("--all", "clear_all", is_flag=True, help="Every tenant that is not running.")
@click.option("--transport", help="neonize (real WhatsApp) or sim. Default: neonize.")
@click.pass_context
def clear_auth(
    ctx: click.Context, tenant_ids: list[str], clear_all: bool, transport: str | None
) -> None:
    """Delete TENANT's device keys and JID and park it in logged_out (pair it again after).

    Only that tenant's device is touched; other tenants, running or not, keep theirs. A
    TENANT that a live instance holds is cleared by that instance; --all skips those.

    \b
    Example:
      wamgr clear-auth shop-1
      wamgr clear-auth --all
    """
    from wamgr.credentials import clear_credentials
    from wamgr.transport import resolve_transport

    if clear_all == bool(tenant_ids):
        raise click.UsageError("give TENANT..., or --all to clear every tenant not running")
    cfg = load_config(ctx, transport=transport)
    refused: list[HeldElsewhere] = []
    with open_db(ctx) as database:
        if clear_all:
            tenant_ids = [record.status.tenant_id for record in TenantStore(database).all()]
        chosen, owned = resolve_transport(cfg, database.url)
        try:
            for tenant_id in tenant_ids:
                try:
                    clear_credentials(database, chosen, tenant_id)
                except HeldElsewhere as exc:
                    if clear_all:
                        refused.append(exc)
                        continue
                    if _clear_on_holder(database, tenant_id, cfg.call_timeout_s):
                        continue
                    clear_credentials(database, chosen, tenant_id)  # its holder let go
                click.echo(f"{tenant_id}: credentials cleared; logged_out until paired again")
        finally:
            if owned:
                chosen.close()
    for exc in refused:
        click.echo(f"wamgr: {exc.format_message()}", err=True)
    if refused:
        ctx.exit(HeldElsewhere.exit_code)


def _clear_on_holder(database: Database, tenant_id: str, timeout_s: float) -> bool:
    """Have the live instance holding ``tenant_id`` clear its credentials (a forwarded call)
    and say so; False if no live instance holds it any more. HolderNotAnswering, naming the
    holder, if it does not answer within ``timeout_s``."""
    from wamgr.credentials import operator_id

    with standalone_caller(database, operator_id()) as caller:
        deadline = Deadline(f"clear_auth({tenant_id!r})", timeout_s)
        forwarded = caller.call(tenant_id, CallKind.CLEAR_AUTH, {}, deadline)
    if forwarded is None:
        return False
    click.echo(
        f"{tenant_id}: credentials cleared by instance {forwarded.holder}, which holds it; "
        "logged_out until paired again"
    )
    return True
