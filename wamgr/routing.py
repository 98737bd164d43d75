"""Commands for tenants held by other instances: sending them, and applying those sent here.

A command about a tenant whose live lease another instance holds is written to
``wamgr_commands`` for that instance (and NOTIFY wakes it); see :mod:`wamgr.store.commands`.
The receiving side is :meth:`CommandRouter.apply`, which the command listener calls for every
row addressed to this instance or to any instance. A connect this instance cannot take for
lack of capacity is left to the other instances' claim loops: the desired state is already
written, so the tenant is not lost.
"""

from __future__ import annotations

from loguru import logger

from wamgr.actors import messages as m
from wamgr.local_tenants import LocalTenants, ask
from wamgr.status import RUNNING_STATES, TenantStatus
from wamgr.store.commands import Command, CommandStore
from wamgr.store.tenants import TenantStore


class CommandRouter:
    """Sends commands to the holder of a tenant, and runs the commands sent to this instance."""

    def __init__(
        self,
        instance_id: str,
        commands: CommandStore,
        tenants: TenantStore,
        local: LocalTenants,
        capacity: int | None = None,
    ):
        self._me = instance_id
        self._commands = commands
        self._tenants = tenants
        self._local = local
        self._capacity = capacity

    def forward(self, tenant_id: str, command: Command) -> TenantStatus | None:
        """Send ``command`` to the live holder of the tenant if that is another instance.

        Returns the tenant's stored status when it was sent (the holder runs it), None when
        the command is this instance's to run.
        """
        target = self._commands.send(tenant_id, command, sender=self._me)
        if target is None:
            return None
        logger.bind(tenant=tenant_id).info("{} sent to {}, which holds the tenant", command, target)
        record = self._tenants.get(tenant_id)
        return record.status if record else None

    def apply(self, tenant_id: str, command: Command) -> None:
        """Run a command another instance (or the CLI) sent here; the desired state is written
        already. Does not wait for a link to close."""
        deadline = self._local.deadline(f"{command}({tenant_id!r})")
        if command in (Command.CONNECT, Command.RECONNECT):
            if self._no_room_for(tenant_id):
                logger.bind(tenant=tenant_id).warning(
                    "{} not taken: this instance runs its capacity of {} tenants; another "
                    "instance's claim loop connects it",
                    command,
                    self._capacity,
                )
                return
            ref = self._local.get_or_create(tenant_id, deadline)
            ask(ref, m.Connect() if command is Command.CONNECT else m.Reconnect(), deadline)
            return
        self._local.stop_later(tenant_id, do_logout=command is Command.LOGOUT)

    def _no_room_for(self, tenant_id: str) -> bool:
        """Whether connecting ``tenant_id`` here would take a lease beyond the capacity."""
        if self._capacity is None:
            return False
        states = self._local.states()
        if states.get(tenant_id) in RUNNING_STATES:
            return False  # it holds (or wants) its socket here already
        return sum(1 for state in states.values() if state in RUNNING_STATES) >= self._capacity
