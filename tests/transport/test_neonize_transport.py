"""The neonize transport with the real neonize client (in host processes) and no route to
WhatsApp: every dial fails here at DNS in about 10 ms, which is what these tests rely on.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator

import psycopg
import pytest

from wamgr import TenantState
from wamgr.status import Desired
from wamgr.store.db import Database
from wamgr.store.tenants import TenantStore
from wamgr.transport.neonize import NeonizeSettings, NeonizeTransport

S = TenantState
JID_A = "15550001111:7@s.whatsapp.net"
JID_B = "15550003333:4@s.whatsapp.net"
DIAL_FAILURE = "failed to dial whatsapp web websocket"


@pytest.fixture
def neonize(database_url: str) -> Iterator[Callable[..., NeonizeTransport]]:
    """Make NeonizeTransports on this test's database; every one is closed at the end."""
    made: list[NeonizeTransport] = []

    def make(host_env: dict[str, str] | None = None, **settings: int) -> NeonizeTransport:
        transport = NeonizeTransport(NeonizeSettings(database_url, **settings), host_env=host_env)
        made.append(transport)
        return transport

    yield make
    for transport in made:
        transport.close()


@pytest.mark.slow
def test_connect_backs_off_on_the_dial_failure_and_only_wamgr_retries(make_manager, neonize, clock):
    transport = neonize()
    mgr = make_manager(transport=transport)
    mgr.connect("t1")
    status = mgr.wait_for("t1", S.BACKOFF, timeout=10)
    assert DIAL_FAILURE in status.last_error
    assert status.attempt == 1
    assert status.next_retry_at.timestamp() == pytest.approx(clock.time() + 3.0)
    assert _connects(transport) == 1

    for attempt, delay in [(2, 5.0), (3, 5.0), (4, 5.0)]:
        # Nothing reconnects on its own meanwhile: no whatsmeow auto-reconnect, no retry
        # before the virtual clock says so.
        _quiet(0.5)
        assert _connects(transport) == attempt - 1
        clock.advance(3.0 if attempt == 2 else 5.0)
        _eventually(lambda a=attempt: mgr.status("t1").attempt == a)
        status = mgr.wait_for("t1", S.BACKOFF, timeout=10)
        assert DIAL_FAILURE in status.last_error
        assert status.next_retry_at.timestamp() == pytest.approx(clock.time() + delay)
        assert _connects(transport) == attempt
    stats = transport.host_stats()[0]
    assert stats["open_links"] == 0 and stats["abandoned"] == 0
    assert stats["dial_failures"] == stats["connects"] == 4
    assert len(transport.hosts()) == 1  # one host served every attempt


def test_an_unpaired_tenant_connects_as_a_new_device(make_manager, neonize):
    # The real client pairs a new device: the dial fails, but the device store was set up
    # (whatsmeow's tables exist) and no device row was written for it.
    mgr = make_manager(transport=neonize())
    mgr.connect("t1")
    mgr.wait_for("t1", S.BACKOFF, timeout=10)
    assert mgr.status("t1").jid is None
    assert _devices(mgr) == []


@pytest.mark.slow
def test_a_stored_jid_without_keys_is_logged_out_and_nothing_crashes(
    make_manager, neonize, database_url
):
    transport = neonize()
    _store_jid(database_url, "t1", JID_A)
    mgr = make_manager(transport=transport)
    mgr.connect("t1")
    status = mgr.wait_for("t1", S.LOGGED_OUT, timeout=10)
    assert "no keys for device" in status.last_error
    assert status.jid is None
    assert transport.exited_hosts() == []  # resuming a missing device would have crashed Go
    assert transport.host_stats()[0]["connects"] == 0  # Go was never asked


@pytest.mark.slow
def test_a_stored_device_is_resumed_by_its_jid(make_manager, neonize, database_url):
    transport = neonize()
    mgr = make_manager(transport=transport)
    mgr.connect("setup")  # one real connect creates whatsmeow's tables
    mgr.wait_for("setup", S.BACKOFF, timeout=10)
    _insert_device(database_url, JID_A)
    _insert_device(database_url, JID_B)
    _store_jid(database_url, "t1", JID_A)
    mgr.connect("t1")
    status = mgr.wait_for("t1", S.BACKOFF, timeout=10)
    # Go loaded device A (a missing or foreign device would be logged_out or a crash) and
    # dialled with it.
    assert DIAL_FAILURE in status.last_error
    assert status.jid == JID_A
    assert transport.exited_hosts() == []


@pytest.mark.slow
def test_clear_auth_removes_exactly_one_tenants_device(make_manager, neonize, database_url):
    transport = neonize()
    mgr = make_manager(transport=transport)
    mgr.connect("setup")
    mgr.wait_for("setup", S.BACKOFF, timeout=10)
    for jid in (JID_A, JID_B):
        _insert_device(database_url, jid, with_keys=True)
    _store_jid(database_url, "t1", JID_A)
    _store_jid(database_url, "t2", JID_B)
    before = _rows(database_url)
    assert all(before[table] == {JID_A, JID_B} for table in before)

    status = mgr.clear_auth("t1")
    assert status.state is S.LOGGED_OUT and status.jid is None
    after = _rows(database_url)
    assert all(after[table] == {JID_B} for table in after), after
    assert mgr.status("t2").jid == JID_B


@pytest.mark.slow
def test_a_dead_host_costs_only_its_own_links(make_manager, neonize, clock):
    # A proxy that accepts and never answers keeps each dial (and its host's gate) busy;
    # the watchdog ends a host whose gate stays shut for 4 s.
    blackhole = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        blackhole.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(blackhole.accept()[0])
            except TimeoutError:
                continue

    acceptor = threading.Thread(target=accept, name="test-blackhole", daemon=True)
    acceptor.start()
    try:
        port = blackhole.getsockname()[1]
        transport = neonize(
            host_env={
                "HTTPS_PROXY": f"http://127.0.0.1:{port}",
                "WAMGR_NEONIZE_GATE_STUCK_S": "4",
            },
            tenants_per_host=1,
        )
        mgr = make_manager(transport=transport)
        mgr.connect("t1")
        _eventually(lambda: len(accepted) == 1)  # t1 dials (and hangs) in the first host
        first = transport.hosts()[0]["pid"]
        mgr.connect("t2")
        _eventually(lambda: len(accepted) == 2)  # t2 in a second host
        assert len(transport.hosts()) == 2

        os.kill(first, signal.SIGKILL)  # a crash of the first host
        status = mgr.wait_for("t1", S.BACKOFF, timeout=10)
        assert "killed by SIGKILL" in status.last_error
        assert mgr.status("t2").state is S.CONNECTING  # the other host is untouched

        status = mgr.wait_for("t2", S.BACKOFF, timeout=15)  # the watchdog gave up on it
        assert "exited with code 3" in status.last_error
        clock.advance(3.0)  # both retry, each in a new host
        _eventually(lambda: len(accepted) == 4)
        assert first not in {h["pid"] for h in transport.hosts()}
    finally:
        stop.set()
        acceptor.join(2)
        for conn in accepted:
            conn.close()
        blackhole.close()


# --- helpers --------------------------------------------------------------------------------


def _connects(transport: NeonizeTransport) -> int:
    return sum(stats["connects"] for stats in transport.host_stats())


def _quiet(seconds: float) -> None:
    threading.Event().wait(seconds)


def _eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    pause = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        pause.wait(0.02)
    raise AssertionError("condition not met in time")


def _store_jid(database_url: str, tenant_id: str, jid: str) -> None:
    db = Database(database_url)
    db.open()
    try:
        store = TenantStore(db)
        store.set_desired(tenant_id, Desired.CONNECTED)
        store.set_jid(tenant_id, jid)
    finally:
        db.close()


def _devices(mgr) -> list[str]:
    with psycopg.connect(mgr.config.database_url) as conn:
        return [row[0] for row in conn.execute("SELECT jid FROM whatsmeow_device")]


# Tables holding one device's keys, with the column naming the device.
_KEY_TABLES = {
    "whatsmeow_device": "jid",
    "whatsmeow_identity_keys": "our_jid",
    "whatsmeow_sessions": "our_jid",
    "whatsmeow_privacy_tokens": "our_jid",
}


def _insert_device(database_url: str, jid: str, with_keys: bool = False) -> None:
    """A device row as whatsmeow writes it after pairing (random keys of the right sizes)."""
    key = os.urandom
    with psycopg.connect(database_url, autocommit=True) as conn, conn.transaction():
        conn.execute(
            "INSERT INTO whatsmeow_device (jid, registration_id, noise_key, identity_key,"
            " signed_pre_key, signed_pre_key_id, signed_pre_key_sig, adv_key, adv_details,"
            " adv_account_sig, adv_account_sig_key, adv_device_sig)"
            " VALUES (%s, 1, %s, %s, %s, 1, %s, %s, %s, %s, %s, %s)",
            (jid, key(32), key(32), key(32), key(64), key(32), b"", key(64), key(32), key(64)),
        )
        if with_keys:
            peer = "15559998888@s.whatsapp.net"
            conn.execute(
                "INSERT INTO whatsmeow_identity_keys (our_jid, their_id, identity)"
                " VALUES (%s, %s, %s)",
                (jid, peer, key(32)),
            )
            conn.execute(
                "INSERT INTO whatsmeow_sessions (our_jid, their_id, session) VALUES (%s, %s, %s)",
                (jid, peer, key(100)),
            )
            conn.execute(
                "INSERT INTO whatsmeow_privacy_tokens (our_jid, their_jid, token, timestamp)"
                " VALUES (%s, %s, %s, 1)",
                (jid, peer, key(20)),
            )


def _rows(database_url: str) -> dict[str, set[str]]:
    with psycopg.connect(database_url) as conn:
        return {
            table: {row[0] for row in conn.execute(f"SELECT {column} FROM {table}")}
            for table, column in _KEY_TABLES.items()
        }
