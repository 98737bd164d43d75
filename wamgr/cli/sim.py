"""``wamgr sim`` serves a simulated WhatsApp over TCP; ``wamgr sim-stats`` asks it what it saw.

Several ``wamgr serve --transport sim://HOST:PORT`` processes can share one simulator, which
counts every socket, so a test or a demo can prove that no account ever had two at once.
"""

from __future__ import annotations

import json

import click

from wamgr.cli.context import Port
from wamgr.cli.signals import StopSignals

#: Seconds ``sim`` may take from SIGTERM or SIGINT to its exit (its server stops in ≤ 5 s).
SIM_STOP_BUDGET_S = 10.0


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=Port(), default=7450, show_default=True, help="Port to listen on (0: any)."
)
@click.option("--manual-pair", is_flag=True, help="Wait for a scan instead of pairing at once.")
def sim(host: str, port: int, manual_pair: bool) -> None:
    """Serve a simulated WhatsApp over TCP until SIGTERM or SIGINT.

    Several `wamgr serve --transport sim://HOST:PORT` processes can share it; it counts
    every socket, so `wamgr sim-stats` proves no account ever had two at once.

    \b
    Example:
      wamgr sim --port 7450 &
      wamgr serve --transport sim://127.0.0.1:7450
    """
    from wamgr.transport.sim import SimWhatsApp
    from wamgr.transport.sim_server import SimServer

    with StopSignals(SIM_STOP_BUDGET_S, name="wamgr-sim-signals") as signals:
        server = SimServer(SimWhatsApp(auto_pair=not manual_pair), host, port).start()
        click.echo(f"simulated WhatsApp on {server.url}", err=True)
        signals.wait()
        server.stop()


@click.command("sim-stats")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=Port(allow_any=False), default=7450, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def sim_stats(host: str, port: int, as_json: bool) -> None:
    """Print what a running `wamgr sim` has seen: the most sockets one account ever had open
    at once (the promise: 1), accounts, and sockets open now.

    \b
    Example:
      wamgr sim-stats --port 7450 --json
    """
    from wamgr.transport.sim_server import fetch_stats

    try:
        stats = fetch_stats(host, port)
    except OSError as exc:
        raise click.ClickException(f"no simulator at {host}:{port} ({exc})") from exc
    if as_json:
        click.echo(json.dumps(stats))
    else:
        for key, value in stats.items():
            click.echo(f"{key}: {value}")
