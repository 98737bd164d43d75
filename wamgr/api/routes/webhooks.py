"""Webhook deliveries: list them (dead ones above all) and send dead ones again.

A delivery that used up its attempts (or whose endpoint answered 410 Gone) is kept as
*dead* for 30 days. Retrying it makes the same row pending again: it keeps its
``webhook-id``, so a receiver that already handled the event can tell.
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from wamgr.api.dependencies import Manager
from wamgr.api.schemas import DeliveryOut, RetriedOut
from wamgr.errors import DeliveryNotFound
from wamgr.status import TENANT_ID_PATTERN, validate_tenant_id
from wamgr.store.outbox import Delivery
from wamgr.webhooks.sender import shown_url

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    """A delivery as the API shows it (the endpoint without credentials or query)."""
    return {
        "id": delivery.id,
        "webhook_id": delivery.webhook_id,
        "endpoint": shown_url(delivery.endpoint),
        "event_type": delivery.event_type,
        "tenant_id": delivery.tenant_id,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "last_status": delivery.last_status,
        "last_error": delivery.last_error,
        "created_at": delivery.created_at,
        "delivered_at": delivery.delivered_at,
        "gave_up_at": delivery.gave_up_at,
        "tenant_endpoint": delivery.tenant_endpoint,
    }


@router.get("/deliveries", response_model=list[DeliveryOut])
def list_deliveries(
    mgr: Manager,
    status: Annotated[
        Literal["dead", "pending", "delivered"] | None, Query(description="Only these")
    ] = None,
    tenant_id: Annotated[
        str | None,
        Query(
            max_length=64,
            description="Of one tenant",
            json_schema_extra={"pattern": TENANT_ID_PATTERN},
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    """Webhook deliveries, newest first (``status=dead``: the ones given up)."""
    if tenant_id is not None:
        tenant_id = validate_tenant_id(tenant_id)
    return [delivery_json(d) for d in mgr.runtime.outbox.deliveries(status, tenant_id, limit)]


@router.post("/deliveries/{delivery_id}/retry", response_model=RetriedOut)
def retry_delivery(delivery_id: Annotated[int, Path(ge=1)], mgr: Manager) -> Any:
    """Send a dead delivery again, with its original ``webhook-id``; 404 DeliveryNotFound
    unless it is dead (and its endpoint enabled)."""
    retried = mgr.runtime.outbox.retry_dead([delivery_id])
    if not retried:
        raise DeliveryNotFound(delivery_id)
    _wake(mgr)
    return {"retried": retried}


@router.post("/deliveries/retry", response_model=RetriedOut)
def retry_all(mgr: Manager) -> Any:
    """Send every dead delivery again (those to disabled endpoints stay dead)."""
    retried = mgr.runtime.outbox.retry_dead(None)
    _wake(mgr)
    return {"retried": retried}


def _wake(mgr: Manager) -> None:
    sender = mgr.runtime.webhooks
    if sender is not None:
        sender.wake()
