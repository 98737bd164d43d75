"""Neonize links in *this* process: the Transport a neonize host serves to its parent.

Every link shares one :class:`~wamgr.transport.neonize.gate.GoGate` (the Go maps are
process-wide). The manager's process never uses this directly: it runs links in host
processes (:mod:`wamgr.transport.neonize.transport`). Tests use it to drive links without a
host.
"""

from __future__ import annotations

import threading
import time

from loguru import logger

from wamgr.transport.base import Closed, EventCallback, LinkEvent
from wamgr.transport.neonize.auth import DeviceStore
from wamgr.transport.neonize.gate import GoGate
from wamgr.transport.neonize.lib import ClientFactory, make_client
from wamgr.transport.neonize.link import LinkSettings, NeonizeLink
from wamgr.transport.neonize.stats import HostStats


class LocalNeonizeTransport:
    """Makes :class:`NeonizeLink` objects on store ``store_url``, all behind one gate."""

    def __init__(
        self,
        store_url: str,
        *,
        gate: GoGate | None = None,
        client_factory: ClientFactory = make_client,
        settings: LinkSettings | None = None,
    ):
        self.store_url = store_url
        self.gate = gate or GoGate()
        self.devices = DeviceStore(store_url)
        self.stats = HostStats()
        self._client_factory = client_factory
        self._settings = settings or LinkSettings()
        self._lock = threading.Lock()
        self._links: dict[int, NeonizeLink] = {}
        self._closed_all = threading.Condition(self._lock)

    def create_link(
        self,
        tenant_id: str,
        jid: str | None,
        generation: int,
        on_event: EventCallback,
        proxy: str | None = None,
    ) -> NeonizeLink:
        """An unopened link of ``tenant_id``: resumes ``jid``, or pairs a new device; it
        dials through ``proxy`` if given."""
        holder: list[NeonizeLink] = []

        def report(event: LinkEvent) -> None:
            if isinstance(event, Closed):
                self._forget(holder[0])
            on_event(event)

        link = NeonizeLink(
            tenant_id=tenant_id,
            jid=jid,
            generation=generation,
            on_event=report,
            store_url=self.store_url,
            gate=self.gate,
            devices=self.devices,
            client_factory=self._client_factory,
            settings=self._settings,
            stats=self.stats,
            proxy=proxy,
        )
        holder.append(link)
        with self._lock:
            self._links[id(link)] = link
        return link

    def clear_auth(self, tenant_id: str, jid: str | None) -> None:
        """Delete device ``jid``'s keys (only that device)."""
        if jid is not None:
            gone = self.devices.delete_device(jid)
            logger.bind(tenant=tenant_id).info("deleted {} device rows of {}", gone, jid)

    def close(self, timeout: float = 10.0) -> bool:
        """Close every link (no logout) and wait up to ``timeout`` for their ``Closed``."""
        with self._lock:
            links = list(self._links.values())
        for link in links:
            link.close(do_logout=False)
        end = time.monotonic() + timeout
        with self._closed_all:
            while self._links:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._closed_all.wait(left)
        return True

    def open_links(self) -> int:
        """How many links have not reported ``Closed``."""
        with self._lock:
            return len(self._links)

    def _forget(self, link: NeonizeLink) -> None:
        with self._closed_all:
            self._links.pop(id(link), None)
            self._closed_all.notify_all()
