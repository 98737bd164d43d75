"""Transports: how links reach WhatsApp (neonize) or the simulator."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from wamgr.errors import ConfigError

if TYPE_CHECKING:
    from wamgr.clock import Clock
    from wamgr.transport.base import Transport


class TransportConfig(Protocol):
    """What :func:`resolve_transport` reads of the configuration (``wamgr.Config`` has it all).

    Named here so that the transport package needs nothing from ``wamgr.config``.
    """

    transport: str | Transport
    clock: Clock | None
    home: Path
    auth_database_url: str | None
    neonize_tenants_per_host: int
    neonize_host_connects: int


def resolve_transport(config: TransportConfig, database_url: str) -> tuple[Transport, bool]:
    """The transport ``config`` names, and whether the manager owns it (and closes it on stop).

    A Transport object passed in is used as is and left open: the caller owns it. The neonize
    transport gets its own settings, built here and nowhere else. The in-process simulator
    (``"sim"``) keeps its devices in ``home`` (:data:`~wamgr.transport.sim_devices.DEVICES_FILE`),
    so a restarted manager resumes them as it would with real WhatsApp.
    """
    choice = config.transport
    if not isinstance(choice, str):
        return choice, False
    if choice == "sim":
        from wamgr.transport.sim import SimWhatsApp
        from wamgr.transport.sim_devices import DEVICES_FILE

        devices = Path(config.home) / DEVICES_FILE
        return SimWhatsApp(auto_pair=True, clock=config.clock, devices_file=devices), True
    if choice.startswith("sim://"):
        from wamgr.transport.sim_client import RemoteSimTransport

        try:
            return RemoteSimTransport(choice), True
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
    if choice == "neonize":
        from wamgr.transport.neonize import NeonizeSettings, NeonizeTransport

        settings = NeonizeSettings(
            auth_database_url=config.auth_database_url or database_url,
            tenants_per_host=config.neonize_tenants_per_host,
            host_connects=config.neonize_host_connects,
        )
        return NeonizeTransport(settings), True
    raise ConfigError(f"transport {choice!r} is not available in this version of wamgr")
