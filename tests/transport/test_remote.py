"""Links to a link server over a connection the test can freeze: dial and keep-alive bounds.

A ``wamgr sim`` server behind a freezable proxy plays a server that stops answering without
hanging up (a partition, a paused process). Issue #12 (6): such a server used to leave every
link "connected" forever, and a write to it could block the caller.
"""

from __future__ import annotations

import threading
import time

import pytest
from dbproxy import FreezableProxy

from wamgr.transport.base import Closed, CloseReason, Connected
from wamgr.transport.remote import ChannelTimeouts
from wamgr.transport.sim import SimWhatsApp
from wamgr.transport.sim_client import RemoteSimTransport
from wamgr.transport.sim_server import SimServer


@pytest.fixture
def server():
    server = SimServer(SimWhatsApp(auto_pair=True)).start()
    yield server
    server.stop()


@pytest.fixture
def proxy(server):
    proxy = FreezableProxy((server.host, server.port), name="simproxy").start()
    yield proxy
    proxy.stop()


class Events:
    """A link's events, with a wait for the first of a type."""

    def __init__(self) -> None:
        self.seen: list[object] = []
        self.changed = threading.Condition()

    def __call__(self, event: object) -> None:
        with self.changed:
            self.seen.append(event)
            self.changed.notify_all()

    def wait_for(self, kind: type, timeout: float = 5.0):
        with self.changed:
            found = self.changed.wait_for(
                lambda: any(isinstance(e, kind) for e in self.seen), timeout
            )
        assert found, f"no {kind.__name__} within {timeout} s: {self.seen}"
        return next(e for e in self.seen if isinstance(e, kind))


def _transport(proxy, **timeouts) -> RemoteSimTransport:
    return RemoteSimTransport(proxy.sim_url, ChannelTimeouts(**timeouts))


@pytest.mark.slow
def test_a_server_that_stops_answering_closes_the_links_by_the_keepalive(proxy, server):
    transport = _transport(proxy, keepalive_interval_s=0.2, keepalive_timeout_s=1.0)
    events = Events()
    link = transport.create_link("t1", None, 1, events)
    try:
        link.open()
        events.wait_for(Connected)
        time.sleep(2.0)  # quiet, but answering pings: nothing happens
        assert not any(isinstance(e, Closed) for e in events.seen)
        proxy.freeze()
        frozen_at = time.monotonic()
        closed = events.wait_for(Closed, timeout=5)
        assert closed.reason is CloseReason.KEEPALIVE_TIMEOUT
        assert time.monotonic() - frozen_at < 1.0 + 1.5  # the timeout, and room for a busy host
    finally:
        proxy.thaw()
        transport.close()


@pytest.mark.slow
def test_a_dial_without_an_answer_fails_and_is_closed_on_the_server(proxy, server, wait_until):
    transport = _transport(proxy, dial_s=0.5, keepalive_interval_s=0.2, keepalive_timeout_s=30)
    warm_up = Events()
    transport.create_link("warm-up", None, 1, warm_up).open()
    warm_up.wait_for(Connected)  # the connection is up and answering
    events = Events()
    link = transport.create_link("t1", None, 1, events)
    try:
        proxy.freeze()
        link.open()
        closed = events.wait_for(Closed, timeout=5)
        assert closed.reason is CloseReason.DIAL_FAILED
        proxy.thaw()  # the open, then the close, reach the server now
        wait_until(lambda: server.sim.dial_attempts("t1") == 1)
        wait_until(lambda: server.sim.open_sockets() == 1, what="only the warm-up link open")
        assert len([e for e in events.seen if isinstance(e, Closed)]) == 1
    finally:
        proxy.thaw()
        transport.close()


def test_close_returns_at_once_when_the_server_stopped_reading(proxy):
    transport = _transport(proxy, keepalive_interval_s=5.0, keepalive_timeout_s=30.0)
    events = Events()
    link = transport.create_link("t1", None, 1, events)
    try:
        link.open()
        events.wait_for(Connected)
        proxy.freeze()
        channel = transport.channel
        started = time.monotonic()
        for _ in range(200):  # ~20 MB: far more than the socket buffers hold
            channel.send({"op": "noop", "pad": "x" * 100_000})
        link.close(do_logout=False)  # what the lease keeper does when it fences
        assert time.monotonic() - started < 1.0
    finally:
        proxy.thaw()
        transport.close()
