"""Rendering the dashboard: the Jinja2 templates, their filters, and a tenant as JSON.

Templates live in ``wamgr/web/templates`` and are autoescaped. Every page gets the same
base context (:func:`render`): the session's CSRF token, whether signing out makes sense,
this instance's id and a one-time message (a "flash") left by the action before.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from wamgr.status import TenantState
from wamgr.store.tenants import TenantRecord
from wamgr.web.session import Flashes

#: Every state in the order the fleet's counts show them: the ones needing an operator first.
STATE_ORDER = [
    TenantState.FAILED,
    TenantState.CONFLICT,
    TenantState.LOGGED_OUT,
    TenantState.BANNED,
    TenantState.BACKOFF,
    TenantState.PAIRING,
    TenantState.CONNECTING,
    TenantState.CONNECTED,
    TenantState.STANDBY,
    TenantState.STOPPED,
]

#: A symbol per state, shown with its colour and name, so the state reads without colour.
STATE_SYMBOLS = {
    "connected": "●",
    "connecting": "◌",
    "pairing": "▣",
    "backoff": "↻",
    "standby": "◐",
    "stopped": "○",
    "banned": "⊘",
    "logged_out": "⏏",
    "conflict": "⚠",
    "failed": "✖",
}


def iso(value: datetime | None) -> str:
    """``value`` as ISO 8601 in UTC (what the page's script counts down to), or ''."""
    if value is None:
        return ""
    return value.astimezone(UTC).isoformat(timespec="seconds")


def clock_time(value: datetime | None) -> str:
    """``value`` as ``YYYY-MM-DD HH:MM:SS UTC`` for people, or '—'."""
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def thousands(value: int) -> str:
    """``value`` with thousands separated by commas (10,000)."""
    return f"{value:,}"


def tenant_json(record: TenantRecord) -> dict[str, Any]:
    """What the page's script needs to redraw a tenant's row."""
    status = record.status
    return {
        "tenant_id": status.tenant_id,
        "state": str(status.state),
        "symbol": STATE_SYMBOLS.get(str(status.state), "?"),
        "desired": str(record.desired),
        "owner": status.owner,
        "attempt": status.attempt,
        "next_retry_at": iso(status.next_retry_at),
        "last_error": status.last_error,
        "lease_expires_at": iso(record.lease_expires_at),
        "lease_expires_text": clock_time(record.lease_expires_at),
    }


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("wamgr.web", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=StrictUndefined,  # a name a template misses is a bug, not an empty field
    )
    env.filters["iso"] = iso
    env.filters["clock"] = clock_time
    env.filters["thousands"] = thousands
    env.globals["STATE_SYMBOLS"] = STATE_SYMBOLS
    env.globals["STATE_ORDER"] = [str(s) for s in STATE_ORDER]
    return env


ENVIRONMENT = _environment()


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """The page ``template`` with ``context`` and the base context every page gets."""
    dashboard = request.app.state.dashboard
    session = getattr(request.state, "dashboard_session", None)
    page = ENVIRONMENT.get_template(template).render(
        request=request,
        csrf=session.csrf if session is not None else "",
        signed_in=session is not None and dashboard.sessions.key_required,
        instance_id=dashboard.manager.config.instance_id,
        flash=getattr(request.state, "dashboard_flash", None),
        **context,
    )
    response = HTMLResponse(page, status_code=status_code)
    response.headers["cache-control"] = "no-store"
    finish(request, response)
    return response


#: Headers of every dashboard page: its own files only, never inside another site's frame
#: (no click on a button through a disguised overlay), no address sent elsewhere.
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


def finish(request: Request, response: Response) -> None:
    """Give ``response`` the dashboard's security headers; make it set the session cookie
    a new session needs, and delete the message the page has shown."""
    response.headers.update(SECURITY_HEADERS)
    dashboard = request.app.state.dashboard
    session = getattr(request.state, "dashboard_session", None)
    if session is not None and session.new_cookie is not None:
        dashboard.sessions.set_cookie(response, request, session.new_cookie)
    if getattr(request.state, "dashboard_flash", None) is not None:
        Flashes.forget(response)
