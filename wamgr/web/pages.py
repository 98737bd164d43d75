"""The dashboard's pages: the fleet, a tenant, the instances, the webhook endpoints; and the
live stream and QR picture the pages load.

Pages are plain (sync) routes: FastAPI runs them on its thread pool, where the database
reads (each bounded, see :mod:`wamgr.store.dashboard`) and manager calls may block.
"""

from __future__ import annotations

import math
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from loguru import logger

from wamgr.errors import UnknownTenant, WamgrError
from wamgr.qr import qr_svg
from wamgr.status import TenantState, validate_tenant_id
from wamgr.store.dashboard import FleetPage
from wamgr.web.actions import buttons
from wamgr.web.context import Board, Dashboard, PageSession
from wamgr.web.views import finish, render

router = APIRouter(prefix="/dashboard", include_in_schema=False)

#: Tenants on one page of the fleet.
PAGE_ROWS = 50
#: History entries and deliveries shown on a tenant's page.
HISTORY_ROWS = 50
DELIVERY_ROWS = 20
#: The longest search text taken.
MAX_SEARCH_CHARS = 64


@router.get("")
def fleet(
    request: Request,
    dashboard: Board,
    _session: PageSession,
    state: Annotated[str, Query()] = "",
    q: Annotated[str, Query(max_length=MAX_SEARCH_CHARS)] = "",
    page: Annotated[int, Query(ge=1)] = 1,
) -> Response:
    """Counts by state, and one page of the tenants (filtered by state, searched by id)."""
    shown_state = state if state in {str(s) for s in TenantState} else ""
    search = q.strip()

    def read(page: int) -> FleetPage:
        return dashboard.board.fleet(
            state=shown_state or None, search=search, limit=PAGE_ROWS, offset=(page - 1) * PAGE_ROWS
        )

    result = read(page)
    pages = max(1, math.ceil(result.total / PAGE_ROWS))
    if page > pages:  # past the end (the fleet shrank, or a hand-made link): the last page
        page = pages
        result = read(page)

    def link(**change: object) -> str:
        params = {"state": shown_state, "q": search, "page": page, **change}
        kept = {k: v for k, v in params.items() if v not in ("", None, 1)}
        return "/dashboard" + (f"?{urlencode(kept)}" if kept else "")

    return render(
        request,
        "fleet.html",
        page_name="fleet",
        page=result,
        state=shown_state,
        q=search,
        page_no=page,
        pages=pages,
        first_row=(page - 1) * PAGE_ROWS + 1,
        link=link,
        all_count=sum(result.counts.values()),
    )


@router.get("/tenants/{tenant_id}")
def tenant(request: Request, tenant_id: str, dashboard: Board, _session: PageSession) -> Response:
    """One tenant: its status, its QR while pairing, the actions, its history, its
    webhook deliveries."""
    tenant_id = validate_tenant_id(tenant_id)
    mgr = dashboard.manager
    records = dashboard.board.records([tenant_id])
    if not records:
        raise UnknownTenant(tenant_id)
    status = mgr.status(tenant_id)  # live if this instance runs it
    has_qr = status.state is TenantState.PAIRING and _qr_code(dashboard, tenant_id) is not None
    return render(
        request,
        "tenant.html",
        page_name="tenant",
        record=records[0],
        status=status,
        here=status.owner in (None, mgr.config.instance_id),
        has_qr=has_qr,
        buttons=buttons(tenant_id),
        history=dashboard.board.history(tenant_id, HISTORY_ROWS),
        deliveries=dashboard.board.deliveries(tenant_id, DELIVERY_ROWS),
    )


@router.get("/tenants/{tenant_id}/qr.svg")
def tenant_qr(tenant_id: str, dashboard: Board, _session: PageSession) -> Response:
    """The tenant's pairing QR as SVG while it pairs on this instance; 404 otherwise."""
    code = _qr_code(dashboard, validate_tenant_id(tenant_id))
    if code is None:
        return Response("no QR code: the tenant is not pairing here", status_code=404)
    return Response(qr_svg(code), media_type="image/svg+xml", headers={"cache-control": "no-store"})


def _qr_code(dashboard: Dashboard, tenant_id: str) -> str | None:
    """The tenant's QR code (asked of the instance that runs it), or None if it shows none
    or that instance did not answer: the page then says where it pairs."""
    try:
        return dashboard.manager.qr(tenant_id)
    except WamgrError as exc:
        logger.bind(tenant=tenant_id).warning("dashboard: no QR: {}", exc.format_message())
        return None


@router.get("/instances")
def instances(request: Request, dashboard: Board, _session: PageSession) -> Response:
    """The live instances, the leases each holds, and each one's capacity."""
    return render(
        request, "instances.html", page_name="instances", instances=dashboard.board.instances()
    )


@router.get("/webhooks")
def webhooks(request: Request, dashboard: Board, _session: PageSession) -> Response:
    """The webhook endpoints: queue depth, failures, and whether each is enabled."""
    configured = dashboard.manager.config.webhook_urls
    return render(
        request,
        "webhooks.html",
        page_name="webhooks",
        endpoints=dashboard.board.endpoints(configured),
        configured=set(configured),
    )


@router.get("/events")
async def events(request: Request, dashboard: Board, _session: PageSession) -> Response:
    """The live stream of status changes (Server-Sent Events, see :mod:`wamgr.web.live`)."""
    dashboard.live.attach()
    response = StreamingResponse(
        dashboard.live.stream(),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )
    finish(request, response)
    return response


@router.get("/ping")
def ping(request: Request, _session: PageSession) -> Response:
    """204 while the session is valid (the page asks before it reconnects its stream)."""
    response = Response(status_code=204)
    finish(request, response)
    return response
