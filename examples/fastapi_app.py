"""wamgr inside a FastAPI application: started and stopped with the app's lifespan, a route
that sends, and inbound messages handled by an async subscriber (no webhook needed).

Settings come from the environment as for ``wamgr serve`` (``WAMGR_DATABASE_URL``,
``WAMGR_TRANSPORT``, ``WAMGR_HOME``, ...). Try it on the simulator:

    WAMGR_TRANSPORT=sim uvicorn fastapi_app:app --app-dir examples
    curl -X PUT localhost:8000/tenants/shop-1
    curl --json '{"to": "15550001111", "text": "hi"}' localhost:8000/tenants/shop-1/messages
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

import wamgr.logging
from wamgr import AsyncConnectionManager, Config, InboundMessage, TenantState, WamgrError
from wamgr.events import ManagerEvent

# wamgr's records into this app's standard logging, with the tenant on every line.
_handler = logging.StreamHandler()
_handler.setFormatter(logging.Formatter("%(levelname)s %(name)s [%(tenant)s] %(message)s"))
logging.getLogger("wamgr").addHandler(_handler)
logging.getLogger("wamgr").setLevel(logging.INFO)
logging.getLogger("wamgr").propagate = False
wamgr.logging.to_stdlib(level="INFO")

#: Messages received, oldest first (a real application stores them, or answers them).
inbox: list[dict[str, str]] = []


async def on_event(event: ManagerEvent) -> None:
    """Runs on the app's event loop for every status change and inbound message."""
    if isinstance(event, InboundMessage):
        inbox.append({"tenant": event.tenant_id, "from": event.sender, "text": event.text})


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """wamgr runs while the app does: started before the first request, stopped (links
    closed without logout, leases released) after the last."""
    async with AsyncConnectionManager(Config.load()) as manager:
        manager.subscribe(on_event)
        app.state.wamgr = manager
        yield


app = FastAPI(lifespan=lifespan)


def wamgr_of(request: Request) -> AsyncConnectionManager:
    """The manager the lifespan started."""
    manager: AsyncConnectionManager = request.app.state.wamgr
    return manager


class Outgoing(BaseModel):
    """A text to send."""

    to: str
    text: str


@app.put("/tenants/{tenant_id}")
async def connect(tenant_id: str, request: Request) -> dict[str, Any]:
    """Connect the tenant (pairing it first if new) and wait until it is connected."""
    manager = wamgr_of(request)
    await manager.connect(tenant_id)
    status = await manager.wait_for(tenant_id, TenantState.CONNECTED, timeout=30)
    return status.to_json()


@app.exception_handler(WamgrError)
async def wamgr_error(request: Request, exc: WamgrError) -> JSONResponse:
    """wamgr's errors say what to do, and which HTTP status they are (NotConnected: 409,
    UnknownTenant: 404, OperationTimeout: 504, ...)."""
    return JSONResponse({"detail": exc.format_message()}, status_code=exc.http_status)


@app.post("/tenants/{tenant_id}/messages", status_code=202)
async def send(tenant_id: str, message: Outgoing, request: Request) -> dict[str, str]:
    """Queue a text: wamgr sends it once the tenant is connected, in order, never twice."""
    queued = await wamgr_of(request).send(tenant_id, message.to, message.text)
    return {"id": queued.message_id, "status": str(queued.status)}


@app.get("/tenants/{tenant_id}/messages/{message_id}")
async def message_state(tenant_id: str, message_id: str, request: Request) -> dict[str, str]:
    """Where a queued message is: queued, sent (with WhatsApp's id), failed, ..."""
    found = await wamgr_of(request).outbound(tenant_id, message_id)
    return {
        "id": found.message_id,
        "status": str(found.status),
        "whatsapp_id": found.wa_message_id or "",
    }


@app.get("/inbox")
async def received() -> list[dict[str, str]]:
    """Every message received since the app started."""
    return inbox
