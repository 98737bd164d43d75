"""TenantServices: what every tenant actor of a manager shares, wired once by the manager."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pykka

from wamgr.actors.pool import ActorPool
from wamgr.clock import Clock
from wamgr.config import Config
from wamgr.status import TenantStatus
from wamgr.store.leases import LeaseStore
from wamgr.store.tenants import TenantStore
from wamgr.transport.base import MessageReceived, Receipt, Transport
from wamgr.workers.status_writer import StatusWriter

if TYPE_CHECKING:
    from wamgr.metrics import Metrics


@dataclass(frozen=True)
class TenantServices:
    """What every tenant actor of a manager shares (all thread-safe or actor refs)."""

    config: Config
    clock: Clock
    transport: Transport
    tenants: TenantStore
    leases: LeaseStore
    writer: StatusWriter
    supervisor: pykka.ActorRef
    keeper: pykka.ActorRef
    on_inbound: Callable[[str, MessageReceived | Receipt], None]
    #: The threads the tenants' actors run their turns on.
    pool: ActorPool
    metrics: Metrics | None = None
    #: The proxy a tenant's link dials through (its setting), None for a direct dial.
    proxy_of: Callable[[str], str | None] = lambda _tenant_id: None
    #: Shows a tenant's new status to readers (the registry's table), on the tenant's
    #: thread, before the registry hears of it; ``active``: its link is connected.
    show_status: Callable[[TenantStatus, bool], None] = lambda _status, _active: None
