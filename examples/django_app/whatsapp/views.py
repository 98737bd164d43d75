"""JSON views over the manager; wamgr's errors become their HTTP status."""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from wamgr import TenantState, WamgrError
from whatsapp import service


def _error(exc: WamgrError) -> JsonResponse:
    return JsonResponse({"detail": exc.format_message()}, status=exc.http_status)


@csrf_exempt
@require_http_methods(["PUT"])
def connect(request: HttpRequest, tenant_id: str) -> HttpResponse:
    """Connect the tenant and wait until it is connected."""
    mgr = service.manager()
    try:
        mgr.connect(tenant_id)
        status = mgr.wait_for(tenant_id, TenantState.CONNECTED, timeout=30)
    except WamgrError as exc:
        return _error(exc)
    return JsonResponse(status.to_json())


@csrf_exempt
@require_http_methods(["POST"])
def send(request: HttpRequest, tenant_id: str) -> HttpResponse:
    """Send ``{"to": ..., "text": ...}`` now; 409 unless connected, 404 for a stranger."""
    body = json.loads(request.body)
    try:
        message_id = service.manager().send_text(tenant_id, body["to"], body["text"])
    except WamgrError as exc:
        return _error(exc)
    return JsonResponse({"id": message_id}, status=201)


@require_http_methods(["GET"])
def inbox(request: HttpRequest) -> HttpResponse:
    """Every message received since the site started."""
    return JsonResponse(service.inbox, safe=False)
