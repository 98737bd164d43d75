"""The simulator over TCP: managers share one simulated WhatsApp through sim://HOST:PORT."""

from __future__ import annotations

import pytest

from wamgr import ConfigError, TenantState
from wamgr.transport.remote import RemoteRefused
from wamgr.transport.sim import SimWhatsApp
from wamgr.transport.sim_client import RemoteSimTransport
from wamgr.transport.sim_server import SimServer, fetch_stats

CONNECTED = TenantState.CONNECTED


@pytest.fixture
def server():
    server = SimServer(SimWhatsApp(auto_pair=True)).start()
    yield server
    server.stop()


@pytest.mark.slow
def test_two_managers_share_one_simulator(make_manager, server):
    first = make_manager(instance_id="first", transport=server.url)
    first.connect("t1")
    jid = first.wait_for("t1", CONNECTED, timeout=5).jid
    second = make_manager(instance_id="second", transport=server.url)
    assert second.connect("t1").state is TenantState.STANDBY
    assert first.send_text("t1", "15550001111", "hi")
    assert server.sim.sent_messages(jid)[0][:2] == ("15550001111", "hi")

    # Stopping releases the lease and closes the socket on the server; the other instance
    # takes the tenant over at once (never two sockets: the stats below).
    first.stop()
    assert second.wait_for("t1", CONNECTED, timeout=5).jid == jid
    stats = fetch_stats(server.host, server.port, per_account=True)
    assert stats["max_concurrent_sockets"] == 1
    assert stats["accounts"] == 1 and stats["open_sockets"] == 1
    assert stats["per_account"] == {jid: {"max_concurrent_sockets": 1, "collisions": 0}}


@pytest.mark.slow
def test_server_side_drops_reach_the_manager(make_manager, server, clock):
    mgr = make_manager(transport=server.url)
    mgr.connect("t1")
    jid = mgr.wait_for("t1", CONNECTED, timeout=5).jid
    server.sim.drop(jid, "temporary_ban", ban_expires_in_s=120.0)
    status = mgr.wait_for("t1", TenantState.BANNED, timeout=5)
    assert status.next_retry_at.timestamp() == pytest.approx(clock.time() + 120.0)
    clock.advance(120.0)
    mgr.wait_for("t1", CONNECTED, timeout=5)


@pytest.mark.slow
def test_a_dead_process_loses_its_sockets(server, wait_until):
    transport = RemoteSimTransport(server.url)
    events = []
    link = transport.create_link("t1", None, 1, events.append)
    link.open()
    wait_until(lambda: any(type(e).__name__ == "Connected" for e in events))
    jid = server.sim.accounts()[0]
    assert server.sim.open_sockets(jid) == 1
    transport.channel.abort()  # the process dies: its connection drops
    wait_until(lambda: server.sim.open_sockets(jid) == 0)
    wait_until(lambda: type(events[-1]).__name__ == "Closed")
    assert events[-1].reason.value == "network"


@pytest.mark.slow
def test_pair_codes_travel_over_the_wire(make_manager):
    server = SimServer(SimWhatsApp(auto_pair=False)).start()
    try:
        mgr = make_manager(transport=server.url)
        mgr.connect("t1")
        mgr.wait_for("t1", TenantState.PAIRING, timeout=5)
        code = mgr.pair_code("t1", "+1 555 123 4567")
        assert code.endswith("4567")
        jid = server.sim.enter_code(code)
        assert mgr.wait_for("t1", CONNECTED, timeout=5).jid == jid
    finally:
        server.stop()


@pytest.mark.slow
def test_a_refused_request_names_the_reason(server, wait_until):
    transport = RemoteSimTransport(server.url)
    events = []
    link = transport.create_link("t1", None, 1, events.append)
    link.open()
    wait_until(lambda: any(type(e).__name__ == "Connected" for e in events))
    with pytest.raises(RemoteRefused, match="not waiting for pairing"):
        link.request_pair_code("15551234567")
    link.close(do_logout=False)
    wait_until(lambda: type(events[-1]).__name__ == "Closed")
    with pytest.raises(RemoteRefused, match="not open"):
        link.send_text("15551234567", "hi")
    transport.close()


def test_an_unreachable_simulator_is_a_dial_failure(make_manager):
    mgr = make_manager(transport="sim://127.0.0.1:1")
    mgr.connect("t1")
    status = mgr.wait_for("t1", TenantState.BACKOFF, timeout=5)
    assert "simulator unreachable" in status.last_error


@pytest.mark.parametrize("bad", ["sim://nohost", "sim://:80", "sim://host:port"])
def test_bad_simulator_addresses_are_refused(make_manager, bad):
    with pytest.raises(ConfigError, match="sim://HOST:PORT"):
        make_manager(transport=bad)
