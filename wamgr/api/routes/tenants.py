"""Tenants: list, create, show, and the commands that connect and stop them.

A command for a tenant that another instance runs is sent there (the manager forwards it);
the route then answers 202 with the status that instance last stored.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response

from wamgr.api.dependencies import KnownTenant, Manager, TenantId
from wamgr.api.schemas import ActiveOut, TenantDetailOut, TenantOut, TenantSettingsIn
from wamgr.errors import UnknownTenant
from wamgr.manager import ConnectionManager
from wamgr.status import TenantStatus

router = APIRouter(prefix="/tenants", tags=["tenants"])


def _command_answer(
    mgr: ConnectionManager, status: TenantStatus | None, tenant_id: str, response: Response
) -> Any:
    """The body of a command's answer; 202 when another instance runs the tenant, 404 if
    the tenant vanished meanwhile."""
    if status is None:
        raise UnknownTenant(tenant_id)
    if status.owner not in (None, mgr.config.instance_id):
        response.status_code = 202  # it runs on another instance: sent there
    return status.to_json()


@router.get("", response_model=list[TenantOut])
def list_tenants(mgr: Manager) -> Any:
    """Every known tenant, live where this instance runs it, else as stored."""
    return [s.to_json() for s in mgr.statuses()]


@router.put(
    "/{tenant_id}",
    response_model=TenantDetailOut,
    status_code=201,
    responses={200: {"model": TenantDetailOut, "description": "Known already"}},
)
def put_tenant(
    tenant_id: TenantId,
    response: Response,
    mgr: Manager,
    body: Annotated[TenantSettingsIn | None, Body()] = None,
) -> Any:
    """Create the tenant (201) or keep it (200), wanted connected, and connect it. Of many
    concurrent PUTs of one new tenant, exactly one answers 201.

    A JSON body sets the tenant's settings first (only the fields it names; null clears
    one), so a new tenant's first dial already uses its proxy. A bad value is 422
    ``InvalidSetting`` naming the field; secrets are masked in the answer."""
    changes = body.changes() if body is not None else {}
    created = False
    if changes:  # one transaction adds the tenant (wanted stopped) with its settings
        store = mgr.runtime.settings
        created = store.put(tenant_id, store.get(tenant_id).changed(**changes), create=True)
    created = mgr.tenants_store.add(tenant_id) or created
    status = mgr.connect(tenant_id)
    if not created:
        response.status_code = 200
    return _detail(mgr, status)


@router.get("/{tenant_id}", response_model=TenantDetailOut)
def get_tenant(tenant: KnownTenant, mgr: Manager) -> Any:
    """The tenant's status (live if this instance runs it, else as stored) and its settings,
    secrets masked."""
    return _detail(mgr, tenant)


def _detail(mgr: ConnectionManager, status: TenantStatus) -> dict[str, Any]:
    return {**status.to_json(), "settings": mgr.settings(status.tenant_id).shown()}


@router.delete("/{tenant_id}", response_model=TenantOut)
def delete_tenant(
    tenant: KnownTenant,
    response: Response,
    mgr: Manager,
    logout: Annotated[bool, Query(description="Unlink the device from the phone")] = False,
) -> Any:
    """Stop the tenant: close its link (logging out first with ``logout=true``) and want
    it stopped. It stays known, with its device unless logged out, so a PUT resumes it.
    202 when another instance runs it (the command was sent there)."""
    status = mgr.remove(tenant.tenant_id, do_logout=logout)
    return _command_answer(mgr, status, tenant.tenant_id, response)


@router.post("/{tenant_id}/connect", response_model=TenantOut)
def connect(tenant: KnownTenant, response: Response, mgr: Manager) -> Any:
    """Connect the tenant (never a second socket); also the way out of conflict, failed
    and logged_out. 202 with its status when another instance runs it."""
    status = mgr.connect(tenant.tenant_id)
    return _command_answer(mgr, status, tenant.tenant_id, response)


@router.post("/{tenant_id}/reconnect", response_model=TenantOut)
def reconnect(tenant: KnownTenant, response: Response, mgr: Manager) -> Any:
    """Close the link (no logout) and open a new one; sent to the instance that runs it."""
    status = mgr.reconnect(tenant.tenant_id)
    return _command_answer(mgr, status, tenant.tenant_id, response)


@router.post("/{tenant_id}/disconnect", response_model=TenantOut)
def disconnect(tenant: KnownTenant, response: Response, mgr: Manager) -> Any:
    """Close the link without logout and want the tenant stopped."""
    status = mgr.remove(tenant.tenant_id, do_logout=False)
    return _command_answer(mgr, status, tenant.tenant_id, response)


@router.post("/{tenant_id}/logout", response_model=TenantOut)
def logout(tenant: KnownTenant, response: Response, mgr: Manager) -> Any:
    """Unlink the device from the phone, clear its credentials, want it stopped."""
    status = mgr.remove(tenant.tenant_id, do_logout=True)
    return _command_answer(mgr, status, tenant.tenant_id, response)


@router.get("/{tenant_id}/active", response_model=ActiveOut)
def active(tenant: KnownTenant, mgr: Manager) -> Any:
    """Whether this instance has a connected link for the tenant."""
    return {"active": mgr.is_connection_active(tenant.tenant_id)}
