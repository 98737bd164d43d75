"""The ``wamgr`` command: run the service and look after tenants from any shell.

One module per concern: :mod:`~wamgr.cli.main` (the group, global options, errors as exit
codes, ``serve``), :mod:`~wamgr.cli.tenants`, :mod:`~wamgr.cli.commands` (``status`` and the
commands for the instance running a tenant), :mod:`~wamgr.cli.pairing`,
:mod:`~wamgr.cli.admin` (``db``, ``webhooks``, ``locks``), :mod:`~wamgr.cli.sim`;
:mod:`~wamgr.cli.output` prints, :mod:`~wamgr.cli.signals` stops on SIGTERM/SIGINT.
"""

from wamgr.cli.main import main

__all__ = ["main"]
