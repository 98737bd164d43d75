"""What the dashboard's buttons do: the tenant commands, the pair code, re-enabling a webhook.

Every action is a form POST that carries the session's CSRF token (see
:mod:`wamgr.web.context`), then redirects back (Post/Redirect/Get) with a one-time message
saying what happened, or what went wrong. The destructive ones (:data:`DESTRUCTIVE`) need
``confirmed=yes``: the page's script asks first and sets it; without a script the answer is
a page that asks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse
from loguru import logger

from wamgr.errors import UnknownTenant, WamgrError
from wamgr.manager import ConnectionManager
from wamgr.status import TenantStatus, validate_tenant_id
from wamgr.web.context import Board, PostSession
from wamgr.web.views import render

router = APIRouter(prefix="/dashboard", include_in_schema=False)


def _disconnect(mgr: ConnectionManager, tenant_id: str) -> TenantStatus | None:
    return mgr.remove(tenant_id, do_logout=False)


def _logout(mgr: ConnectionManager, tenant_id: str) -> TenantStatus | None:
    return mgr.remove(tenant_id, do_logout=True)


#: The tenant commands, by the name in the URL.
COMMANDS: dict[str, Callable[[ConnectionManager, str], TenantStatus | None]] = {
    "connect": ConnectionManager.connect,
    "reconnect": ConnectionManager.reconnect,
    "disconnect": _disconnect,
    "logout": _logout,
    "clear-auth": ConnectionManager.clear_auth,
}

#: Commands that stop a tenant or lose its device: asked for confirmation first, and why.
DESTRUCTIVE = {
    "disconnect": "Disconnect {tenant}? It stays stopped until someone connects it again.",
    "logout": "Log {tenant} out? The device is unlinked from the phone; it must pair again.",
    "clear-auth": "Clear the credentials of {tenant}? It must pair again with a new QR.",
}


#: The buttons of a tenant's page, in order: command and label.
BUTTONS = [
    ("connect", "Connect"),
    ("reconnect", "Reconnect"),
    ("disconnect", "Disconnect"),
    ("logout", "Log out"),
    ("clear-auth", "Clear credentials"),
]


def buttons(tenant_id: str) -> list[tuple[str, str, str]]:
    """``(command, label, question)`` of each button of the tenant's page; the question
    is asked before a destructive command, and empty for the others."""
    return [
        (command, label, DESTRUCTIVE.get(command, "").format(tenant=tenant_id))
        for command, label in BUTTONS
    ]


def _tenant_page(tenant_id: str) -> str:
    """The path of the tenant's page."""
    return f"/dashboard/tenants/{quote(tenant_id)}"


@router.post("/tenants/{tenant_id}/pair-code")
def pair_code(
    tenant_id: str,
    dashboard: Board,
    _session: PostSession,
    phone: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """A code to type on the phone instead of scanning the QR."""
    tenant_id = validate_tenant_id(tenant_id)
    response = RedirectResponse(_tenant_page(tenant_id), status_code=303)
    try:
        code = dashboard.manager.pair_code(tenant_id, phone)
    except WamgrError as exc:
        dashboard.flashes.leave(response, f"no pair code: {exc.format_message()}", error=True)
        return response
    dashboard.flashes.leave(
        response,
        f"Pair code for {phone}: {code} (on the phone: Linked devices › Link a device › "
        "Link with phone number instead)",
    )
    return response


@router.post("/tenants/{tenant_id}/{command}")
def tenant_command(
    request: Request,
    tenant_id: str,
    command: str,
    dashboard: Board,
    _session: PostSession,
    confirmed: Annotated[str, Form()] = "",
) -> Response:
    """Run ``command`` on the tenant, then show its page with what happened."""
    tenant_id = validate_tenant_id(tenant_id)
    run = COMMANDS.get(command)
    if run is None:
        return Response(f"unknown command {command!r}", status_code=404)
    if command in DESTRUCTIVE and confirmed != "yes":
        return render(
            request,
            "confirm.html",
            page_name="confirm",
            question=DESTRUCTIVE[command].format(tenant=tenant_id),
            action=f"{_tenant_page(tenant_id)}/{command}",
            command=command,
            back=_tenant_page(tenant_id),
        )
    mgr = dashboard.manager
    log = logger.bind(tenant=tenant_id)
    response = RedirectResponse(_tenant_page(tenant_id), status_code=303)
    try:
        status = run(mgr, tenant_id)
    except WamgrError as exc:
        log.warning("dashboard: {} failed: {}", command, exc.format_message())
        dashboard.flashes.leave(response, f"{command} failed: {exc.format_message()}", error=True)
        return response
    if status is None:
        raise UnknownTenant(tenant_id)
    log.info("dashboard: {} asked", command)
    where = status.owner not in (None, mgr.config.instance_id)
    text = f"{command}: sent to {status.owner}, which runs it" if where else f"{command}: done"
    dashboard.flashes.leave(response, f"{text} (now {status.state})")
    return response


@router.post("/webhooks/enable")
def enable_webhook(
    dashboard: Board, _session: PostSession, url: Annotated[str, Form(max_length=2048)] = ""
) -> Response:
    """Send events to a disabled endpoint again."""
    response = RedirectResponse("/dashboard/webhooks", status_code=303)
    was_disabled = dashboard.manager.runtime.outbox.enable_endpoint(url)
    if was_disabled:
        logger.info("dashboard: webhook endpoint re-enabled")
    dashboard.flashes.leave(
        response, "Endpoint enabled again." if was_disabled else "That endpoint was not disabled."
    )
    return response
