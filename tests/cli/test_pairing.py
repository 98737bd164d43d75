"""``wamgr pair`` and ``wamgr clear-auth`` through CliRunner, and the pairing loop behind
``wamgr pair`` (:func:`wamgr.cli.pairing.pair_tenant`) on a manager."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest
from click.testing import Result

from wamgr import PairingFailed
from wamgr.cli.pairing import pair_tenant
from wamgr.status import Desired, TenantState
from wamgr.store.leases import LeaseStore
from wamgr.store.tenants import TenantStore
from wamgr.transport.sim import SimWhatsApp
from wamgr.transport.sim_server import SimServer

from .conftest import Wamgr

JID_A = "15550001111:7@s.whatsapp.net"
JID_B = "15550003333:4@s.whatsapp.net"


@pytest.fixture
def manual_sim() -> Iterator[SimServer]:
    """A simulator that waits for the phone to scan (or type a code)."""
    server = SimServer(SimWhatsApp(auto_pair=False)).start()
    yield server
    server.stop()


def _in_thread(wamgr: Wamgr, *args: str) -> tuple[threading.Thread, list[Result]]:
    results: list[Result] = []
    thread = threading.Thread(target=lambda: results.append(wamgr(*args)), name="test-cli")
    thread.start()
    return thread, results


def _pending(sim: SimWhatsApp, kind: str = "qr", timeout: float = 10.0) -> str:
    pause = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if kind == "qr" and sim.pending_pairings():
            return sim.pending_pairings()[0]
        if kind == "code" and sim._pair_codes:
            return next(iter(sim._pair_codes))
        pause.wait(0.02)
    raise AssertionError(f"no {kind} pending")


@pytest.mark.slow
def test_pair_waits_until_the_phone_scanned_the_qr(wamgr, manual_sim, db):
    thread, results = _in_thread(wamgr, "pair", "shop-1", "--transport", manual_sim.url)
    jid = manual_sim.sim.scan(_pending(manual_sim.sim))
    thread.join(20)
    result = results[0]
    assert result.exit_code == 0, result.output
    assert f"shop-1: paired and connected as {jid}" in result.output
    record = TenantStore(db).get("shop-1")
    assert record.desired is Desired.CONNECTED and record.status.jid == jid
    assert LeaseStore(db).holder("shop-1") is None  # released for serve to take


@pytest.mark.slow
def test_pair_with_a_phone_shows_a_pair_code(wamgr, manual_sim):
    thread, results = _in_thread(
        wamgr, "pair", "shop-1", "--phone", "+1 555 123 4567", "--transport", manual_sim.url
    )
    code = _pending(manual_sim.sim, "code")
    manual_sim.sim.enter_code(code)
    thread.join(20)
    result = results[0]
    assert result.exit_code == 0, result.output
    assert f"Pair code for 15551234567: {code}" in result.output
    # the code is asked for once the QR is up, so the QR was shown first
    assert result.output.index("█") < result.output.index("Pair code")
    assert "Linked devices > Link a device" in result.output


@pytest.mark.slow
def test_pair_with_the_in_process_simulator_pairs_at_once(wamgr):
    result = wamgr("pair", "shop-1", "--transport", "sim")
    assert result.exit_code == 0, result.output
    assert "paired and connected as" in result.output


@pytest.mark.slow
def test_pair_times_out_when_nobody_scans(wamgr, manual_sim):
    result = wamgr("pair", "shop-1", "--timeout", "1", "--transport", manual_sim.url)
    assert result.exit_code == 10, result.output
    assert "no phone linked the device within 1 s" in result.output


@pytest.mark.slow
def test_pair_through_a_holder_that_does_not_answer_names_it(wamgr, manual_sim, db):
    TenantStore(db).set_desired("shop-1", Desired.CONNECTED)
    assert LeaseStore(db).acquire("shop-1", "gw-7", 60.0) is not None  # nobody behind it
    result = wamgr(
        "pair", "shop-1", "--transport", manual_sim.url, env={"WAMGR_CALL_TIMEOUT": "0.5"}
    )
    assert result.exit_code == 5, result.output
    assert "instance 'gw-7'" in result.stderr and "did not answer within 0.5 s" in result.stderr


@pytest.mark.slow
def test_pair_of_a_tenant_a_live_instance_holds_shows_its_qr_and_pair_code(
    wamgr, manual_sim, make_manager
):
    holder = make_manager(transport=manual_sim.url, instance_id="gw-1")
    holder.connect("shop-1")
    holder.wait_for("shop-1", TenantState.PAIRING, timeout=5)
    thread, results = _in_thread(
        wamgr, "pair", "shop-1", "--phone", "15551234567", "--transport", manual_sim.url
    )
    code = _pending(manual_sim.sim, "code")
    jid = manual_sim.sim.enter_code(code)
    thread.join(20)
    result = results[0]
    assert result.exit_code == 0, result.output
    assert "held by instance gw-1: pairing it there" in result.output
    assert "█" in result.output and f"Pair code for 15551234567: {code}" in result.output
    assert holder.status("shop-1").jid == jid
    assert manual_sim.sim.max_concurrent_sockets() == 1


@pytest.mark.slow
def test_clear_auth_deletes_one_tenants_device_and_parks_it(wamgr, db, database_url):
    _whatsmeow_rows(database_url, JID_A, JID_B)
    store = TenantStore(db)
    for tenant, jid in (("t1", JID_A), ("t2", JID_B)):
        store.set_desired(tenant, Desired.CONNECTED)
        store.set_jid(tenant, jid)
    result = wamgr("clear-auth", "t1")
    assert result.exit_code == 0, result.output
    assert "t1: credentials cleared" in result.output
    status = store.get("t1").status
    assert status.state is TenantState.LOGGED_OUT and status.jid is None
    assert "wamgr pair" in status.last_error
    assert store.get("t2").status.jid == JID_B
    assert _devices(database_url) == {JID_B}
    assert LeaseStore(db).holder("t1") is None


@pytest.mark.slow
def test_clear_auth_names_a_holder_that_does_not_answer_and_all_skips_held_tenants(
    wamgr, db, database_url
):
    _whatsmeow_rows(database_url, JID_A, JID_B)
    store = TenantStore(db)
    for tenant, jid in (("t1", JID_A), ("t2", JID_B)):
        store.set_desired(tenant, Desired.CONNECTED)
        store.set_jid(tenant, jid)
    LeaseStore(db).acquire("t2", "gw-7", 60.0)  # nobody behind it: the call is not answered
    result = wamgr("clear-auth", "t2", env={"WAMGR_CALL_TIMEOUT": "0.5"})
    assert result.exit_code == 5
    assert "instance 'gw-7'" in result.output and "did not answer" in result.output
    assert _devices(database_url) == {JID_A, JID_B}

    result = wamgr("clear-auth", "--all")
    assert result.exit_code == 9  # t1 cleared, t2 refused
    assert "t1: credentials cleared" in result.output and "gw-7" in result.output
    assert _devices(database_url) == {JID_B}
    assert store.get("t2").status.jid == JID_B


@pytest.mark.slow
def test_clear_auth_of_a_tenant_a_live_instance_holds_is_done_by_it(wamgr, make_manager, sim):
    holder = make_manager(instance_id="gw-1")
    holder.connect("t1")
    jid = holder.wait_for("t1", TenantState.CONNECTED, timeout=5).jid

    result = wamgr("clear-auth", "t1")

    assert result.exit_code == 0, result.output
    assert "t1: credentials cleared by instance gw-1, which holds it" in result.output
    status = holder.status("t1")
    assert status.state is TenantState.LOGGED_OUT and status.jid is None
    assert sim.open_sockets(jid) == 0 and sim.logouts(jid) == 0


def test_clear_auth_of_an_unknown_tenant_exits_3(wamgr):
    assert wamgr("clear-auth", "nobody").exit_code == 3


def test_clear_auth_needs_tenants_or_all(wamgr):
    assert wamgr("clear-auth").exit_code == 2
    assert wamgr("clear-auth", "t1", "--all").exit_code == 2


def _whatsmeow_rows(database_url: str, *jids: str) -> None:
    """The two tables clear-auth deletes from, as whatsmeow creates them (trimmed)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE whatsmeow_device (jid text PRIMARY KEY)")
        conn.execute(
            "CREATE TABLE whatsmeow_sessions (our_jid text REFERENCES whatsmeow_device(jid)"
            " ON DELETE CASCADE, their_id text, PRIMARY KEY (our_jid, their_id))"
        )
        conn.execute("CREATE TABLE whatsmeow_privacy_tokens (our_jid text, their_jid text)")
        for jid in jids:
            conn.execute("INSERT INTO whatsmeow_device VALUES (%s)", (jid,))
            conn.execute("INSERT INTO whatsmeow_sessions VALUES (%s, 'peer')", (jid,))
            conn.execute("INSERT INTO whatsmeow_privacy_tokens VALUES (%s, 'peer')", (jid,))


def _devices(database_url: str) -> set[str]:
    with psycopg.connect(database_url) as conn:
        tables = [
            {row[0] for row in conn.execute(f"SELECT {column} FROM {table}")}
            for table, column in (
                ("whatsmeow_device", "jid"),
                ("whatsmeow_sessions", "our_jid"),
                ("whatsmeow_privacy_tokens", "our_jid"),
            )
        ]
    assert tables[0] == tables[1] == tables[2], tables
    return tables[0]


# --- pair_tenant, on a manager of the test ---------------------------------------------------


@pytest.mark.slow
def test_pair_tenant_shows_each_qr_until_the_phone_scans_it(make_manager, clock) -> None:
    sim = SimWhatsApp(auto_pair=False, clock=clock)
    mgr = make_manager(transport=sim, claim_tenants=False)
    shown: list[str] = []
    scanned: list[str] = []

    def show(text: str) -> None:
        shown.append(text)
        if "Linked devices" in text:  # the phone scans what the terminal shows
            scanned.append(sim.scan(sim.pending_pairings()[0]))

    status = pair_tenant(mgr, "shop-1", timeout_s=10, show=show)
    assert status.state is TenantState.CONNECTED and status.jid == scanned[0]
    assert "█" in shown[0]


@pytest.mark.slow
def test_pair_tenant_gives_up_after_its_timeout(make_manager, clock) -> None:
    sim = SimWhatsApp(auto_pair=False, clock=clock)
    mgr = make_manager(transport=sim, claim_tenants=False)
    shown: list[str] = []
    with pytest.raises(PairingFailed, match=r"within 0\.5 s"):
        pair_tenant(mgr, "shop-1", timeout_s=0.5, show=shown.append)
    assert any("█" in text for text in shown)
