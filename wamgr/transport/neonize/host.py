"""A neonize host: a child process that runs neonize links for the wamgr process that started it.

    python -m wamgr.transport.neonize.host --fd N [--name NAME]

The parent (:class:`~wamgr.transport.neonize.transport.NeonizeTransport`) passes one end of
a socket pair as file descriptor ``N`` and the store URL in ``WAMGR_NEONIZE_STORE_URL`` (not
on the command line, where other users could read a password). The host serves the
JSON-lines link protocol on that socket (:class:`~wamgr.transport.link_server.LinkSession`)
until the parent hangs up, then closes its links and exits. It ignores SIGINT and SIGTERM:
its life follows the parent's (a parent that dies closes the socket).

A crash here (a Go ``fatal error``) costs only this host's tenants: their links report
``Closed(NETWORK)`` in the parent, whose supervisor reconnects them in a new host.

A watchdog ends the process when the Go gate has been held exclusively for longer than
``WAMGR_NEONIZE_GATE_STUCK_S`` (150 s): a dial that never ends (a black-holed proxy) would
otherwise block every Go call of the host for good.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
from typing import Any

#: Seconds the gate may stay shut before the host gives up (whatsmeow's dial gives up at 60 s).
GATE_STUCK_S = 150.0
#: Seconds to close the links once the parent has hung up.
CLOSE_BUDGET_S = 10.0


def main(argv: list[str] | None = None) -> None:
    """Serve the parent on ``--fd`` until it hangs up, then exit."""
    parser = argparse.ArgumentParser(prog="wamgr-neonize-host")
    parser.add_argument("--fd", type=int, required=True, help="the socket to the parent")
    parser.add_argument("--name", default=f"neonize-host-{os.getpid()}")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    store = os.environ.get("WAMGR_NEONIZE_STORE_URL", "")
    if not store.startswith("postgres"):
        print(f"{args.name}: WAMGR_NEONIZE_STORE_URL must be a postgres:// URL", file=sys.stderr)
        os._exit(2)

    from loguru import logger

    import wamgr.logging as wamgr_logging

    # Before neonize is imported: it configures the standard logging on import.
    wamgr_logging.configure(level=os.environ.get("WAMGR_NEONIZE_HOST_LOG_LEVEL", "INFO"))

    from wamgr.transport.link_server import LinkSession
    from wamgr.transport.neonize.local import LocalNeonizeTransport

    sock = socket.socket(fileno=args.fd)
    transport = LocalNeonizeTransport(store)
    stuck_s = float(os.environ.get("WAMGR_NEONIZE_GATE_STUCK_S", GATE_STUCK_S))
    threading.Thread(
        target=_watch_gate,
        args=(transport, stuck_s, args.name),
        name="wamgr-gate-watch",
        daemon=True,
    ).start()

    def stats(_: dict[str, Any]) -> dict[str, Any]:
        return {"stats": host_stats(transport)}

    logger.debug("{} serving (pid {})", args.name, os.getpid())
    session = LinkSession(sock, transport, name=args.name, extra_ops={"stats": stats})
    try:
        session.serve()
    finally:
        clean = transport.close(CLOSE_BUDGET_S)
        if not clean:
            logger.warning(
                "{}: links still closing after {:g} s; exiting", args.name, CLOSE_BUDGET_S
            )
        logger.debug("{} exiting", args.name)
        sys.stderr.flush()
        # Abandoned neonize threads may sit in Go forever: skip interpreter shutdown.
        os._exit(0)


def host_stats(transport: Any) -> dict[str, Any]:
    """What ``stats`` answers: link counters, threads, memory, the gate."""
    return {
        **transport.stats.snapshot(),
        "open_links": transport.open_links(),
        "threads": threading.active_count(),
        "rss_kb": _rss_kb(),
        "gate_exclusive": transport.gate.exclusive_count,
        "pid": os.getpid(),
    }


def _rss_kb() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _watch_gate(transport: Any, stuck_s: float, name: str) -> None:
    from loguru import logger

    pause = threading.Event()  # never set: paces the checks
    while not pause.wait(min(5.0, stuck_s / 4)):
        held = transport.gate.exclusive_held_for()
        if held is not None and held > stuck_s:
            logger.error(
                "{}: the Go gate has been held for {:.0f} s by a dial that does not end; exiting "
                "so that the parent reconnects this host's tenants in a new one",
                name,
                held,
            )
            sys.stderr.flush()
            os._exit(3)


if __name__ == "__main__":
    main()
