"""Health of this instance (``GET /api/status``) and its Prometheus metrics (``GET /metrics``,
on :data:`metrics_router`, which the app mounts without the API key)."""

from collections import Counter
from typing import Any

from fastapi import APIRouter, Response

from wamgr.api.dependencies import Manager
from wamgr.api.schemas import HealthOut
from wamgr.errors import DatabaseUnavailable
from wamgr.metrics import CONTENT_TYPE

router = APIRouter(tags=["health"])
metrics_router = APIRouter(tags=["metrics"])


@router.get("/status", response_model=HealthOut)
def health(response: Response, mgr: Manager) -> Any:
    """Health of this instance: 200, or 503 when the database is unreachable."""
    tenants = Counter(str(s.state) for s in mgr.local_statuses())
    database, leases = "ok", None
    try:
        mgr.check_database()
        leases = mgr.leases_held()
    except DatabaseUnavailable as exc:
        database = exc.format_message()
        response.status_code = 503
    return {
        "instance_id": mgr.config.instance_id,
        "database": database,
        "tenants": dict(sorted(tenants.items())),
        "leases_held": leases,
    }


@metrics_router.get("/metrics", response_class=Response)
def metrics(mgr: Manager) -> Response:
    """Prometheus metrics of this instance (text format)."""
    return Response(mgr.metrics.render(), media_type=CONTENT_TYPE)
