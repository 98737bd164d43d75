"""NeonizeTransport: real WhatsApp links, run in neonize host processes.

neonize's Go core is not safe to share between many clients of one process (unlocked global
maps, pairing clients whose thread never returns, a PostgreSQL connection leaked by every
connect, crashes on some calls after stop; see docs/neonize.md). So the wamgr process never
loads it. Links live in **host** child processes (``python -m
wamgr.transport.neonize.host``), each serving up to ``tenants_per_host`` links (see
:class:`~wamgr.transport.neonize.settings.NeonizeSettings`) over a socket pair with the same
JSON-lines protocol as the simulator:

- a link is placed on the first host with room, or a new host is started for it;
- a host that has served ``host_connects`` links takes no new ones (it *retires*),
  and exits once its last link closed: that returns the PostgreSQL connections its
  connects leaked;
- a host that dies (a Go crash, the watchdog, a kill) takes only its own links down: they
  report ``Closed(NETWORK, "neonize host … exited …")`` and the supervisor reconnects them
  after its backoff, in a new host.

Device credentials are deleted here, in SQL (:class:`~wamgr.transport.neonize.auth.
DeviceStore`), without any Go.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from loguru import logger

from wamgr.transport.base import EventCallback, Link
from wamgr.transport.neonize.auth import DeviceStore, store_url
from wamgr.transport.neonize.settings import NeonizeSettings
from wamgr.transport.remote import LinkChannel, RemoteLink

#: Seconds a host gets to close its links and exit once told to.
HOST_EXIT_BUDGET_S = 12.0


@dataclass
class _Host:
    """One host process and the channel to it."""

    name: str
    process: subprocess.Popen[bytes]
    channel: LinkChannel = field(init=False)
    opened: int = 0  # links placed on it, ever
    retiring: bool = False  # takes no new links; exits when its last link closed
    dismissed: bool = False  # told to exit

    @property
    def pid(self) -> int:
        return self.process.pid


class NeonizeTransport:
    """A Transport whose links are neonize clients in host processes."""

    def __init__(
        self,
        settings: NeonizeSettings,
        *,
        python: str = sys.executable,
        host_env: dict[str, str] | None = None,
    ):
        """Hosts run ``python``; ``host_env`` adds to their environment (tests, benches)."""
        self.settings = settings
        self.store_url = store_url(settings.auth_database_url)
        self.devices = DeviceStore(self.store_url)
        self._python = python
        self._host_env = host_env or {}
        self._lock = threading.Lock()  # guards _hosts, _closed and every _Host's counters
        self._hosts: list[_Host] = []
        self._exited: list[tuple[int, int | None]] = []  # (pid, exit code) of hosts gone
        self._numbers = itertools.count(1)
        self._closed = False

    # --- Transport ----------------------------------------------------------------------

    def create_link(
        self,
        tenant_id: str,
        jid: str | None,
        generation: int,
        on_event: EventCallback,
        proxy: str | None = None,
    ) -> Link:
        """A link of ``tenant_id``; it goes to a host when it opens (and dials through
        ``proxy`` from there)."""
        return RemoteLink(
            self._place, tenant_id, jid, generation, on_event, "no neonize host available", proxy
        )

    def clear_auth(self, tenant_id: str, jid: str | None) -> None:
        """Delete device ``jid``'s keys from the auth store (that device only)."""
        if jid is None:
            return
        gone = self.devices.delete_device(jid)
        logger.bind(tenant=tenant_id).info("deleted the device keys of {} ({} rows)", jid, gone)

    def close(self, timeout: float = HOST_EXIT_BUDGET_S) -> None:
        """Tell every host to close its links and exit; kill those that do not in time."""
        with self._lock:
            self._closed = True
            hosts = list(self._hosts)
            for host in hosts:
                host.dismissed = True
        for host in hosts:
            host.channel.close()
        end = time.monotonic() + timeout
        for host in hosts:
            self._forget(host, _reap(host, max(0.1, end - time.monotonic())))

    # --- diagnostics --------------------------------------------------------------------

    def hosts(self) -> list[dict[str, Any]]:
        """Each running host: pid, links now, links ever placed, whether it retires."""
        with self._lock:
            return [
                {
                    "name": h.name,
                    "pid": h.pid,
                    "links": h.channel.link_count(),
                    "opened": h.opened,
                    "retiring": h.retiring,
                }
                for h in self._hosts
            ]

    def exited_hosts(self) -> list[tuple[int, int | None]]:
        """``(pid, exit code)`` of every host that has exited (None: still reaping)."""
        with self._lock:
            return list(self._exited)

    def host_stats(self, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The ``stats`` answer of every running host (connects, threads, memory…)."""
        with self._lock:
            hosts = list(self._hosts)
        out = []
        for host in hosts:
            with contextlib.suppress(OSError, TimeoutError):
                reply = host.channel.ask({"op": "stats"}, timeout=timeout)
                if reply.get("ok"):
                    out.append(reply["stats"])
        return out

    # --- hosts --------------------------------------------------------------------------

    def _place(self, link: RemoteLink) -> LinkChannel:
        """The channel of a host with room for ``link`` (started if none has); counts it there."""
        with self._lock:
            if self._closed:
                raise OSError("the neonize transport is closed")
            host = next(
                (
                    h
                    for h in self._hosts
                    if not h.retiring
                    and not h.dismissed
                    and h.channel.alive
                    and h.channel.link_count() < self.settings.tenants_per_host
                ),
                None,
            )
            if host is None:
                host = self._start_host()
                self._hosts.append(host)
            host.opened += 1
            if host.opened >= self.settings.host_connects:
                host.retiring = True
            host.channel.reserve(link)
            return host.channel

    def _start_host(self) -> _Host:
        name = f"neonize-host-{next(self._numbers)}"
        ours, theirs = socket.socketpair()
        env = {
            **os.environ,
            **self._host_env,
            "WAMGR_NEONIZE_STORE_URL": self.store_url,
            "NEONIZE_BOT_TAG": "off",
        }
        try:
            process = subprocess.Popen(
                [
                    self._python,
                    "-m",
                    "wamgr.transport.neonize.host",
                    "--fd",
                    str(theirs.fileno()),
                    "--name",
                    name,
                ],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # Go prints to stdout; logs go to stderr
                env=env,
            )
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        host = _Host(name, process)
        host.channel = LinkChannel(
            ours,
            name,
            describe_loss=lambda: _describe_exit(host),
            on_lost=lambda _channel: self._host_lost(host),
            on_link_closed=lambda _channel: self._link_closed(host),
        )
        logger.info("started {} (pid {})", name, process.pid)
        return host

    def _link_closed(self, host: _Host) -> None:
        with self._lock:
            dismiss = host.retiring and not host.dismissed and host.channel.link_count() == 0
            if dismiss:
                host.dismissed = True
        if dismiss:
            logger.info(
                "{} served {} links; retiring it (its leaked database connections go with it)",
                host.name,
                host.opened,
            )
            host.channel.close()

    def _host_lost(self, host: _Host) -> None:
        code = _reap(host, HOST_EXIT_BUDGET_S)
        self._forget(host, code)
        if not host.dismissed:
            logger.warning("{} (pid {}) {}", host.name, host.pid, _exit_text(code))

    def _forget(self, host: _Host, code: int | None) -> None:
        """Drop an exited host and record its exit once (close() and its reader both call)."""
        with self._lock:
            if host in self._hosts:
                self._hosts.remove(host)
                self._exited.append((host.pid, code))


def _reap(host: _Host, timeout: float) -> int | None:
    """Wait for the host to exit (killing it after ``timeout``); its exit code."""
    try:
        return host.process.wait(timeout)
    except subprocess.TimeoutExpired:
        logger.warning("{} (pid {}) did not exit in time; killing it", host.name, host.pid)
        host.process.kill()
        try:
            return host.process.wait(5.0)
        except subprocess.TimeoutExpired:
            return None


def _describe_exit(host: _Host) -> str:
    try:
        code = host.process.wait(5.0)
    except subprocess.TimeoutExpired:
        return f"{host.name} (pid {host.pid}) closed its connection"
    return f"{host.name} (pid {host.pid}) {_exit_text(code)}"


def _exit_text(code: int | None) -> str:
    if code is None:
        return "did not exit"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"exited: killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"
