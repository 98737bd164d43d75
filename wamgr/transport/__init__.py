"""Transports: how links reach WhatsApp (neonize) or the simulator."""

from __future__ import annotations

from typing import TYPE_CHECKING

from wamgr.errors import ConfigError

if TYPE_CHECKING:
    from wamgr.config import Config
    from wamgr.transport.base import Transport


def resolve_transport(config: Config, database_url: str) -> tuple[Transport, bool]:
    """The transport ``config`` names, and whether the manager owns it (and closes it on stop).

    A Transport object passed in is used as is and left open: the caller owns it.
    """
    choice = config.transport
    if not isinstance(choice, str):
        return choice, False
    if choice == "sim":
        from wamgr.transport.sim import SimWhatsApp

        return SimWhatsApp(auto_pair=True, clock=config.clock), True
    if choice.startswith("sim://"):
        from wamgr.transport.sim_client import RemoteSimTransport

        try:
            return RemoteSimTransport(choice), True
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
    if choice == "neonize":
        from wamgr.transport.neonize import NeonizeTransport

        return NeonizeTransport(config, database_url), True
    raise ConfigError(f"transport {choice!r} is not available in this version of wamgr")
