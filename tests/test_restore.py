"""Sessions survive restarts: a new manager on the same database brings tenants back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from wamgr import Config, ConnectionManager, TenantState
from wamgr.transport.sim import SimWhatsApp

#: Seconds a ``serve`` subprocess gets to connect its tenants, and to exit after SIGTERM.
SERVE_DEADLINE_S = 30.0
#: Seconds between two polls of the tenants table (another process: no event to wait on).
POLL_INTERVAL_S = 0.1

CONNECTED = TenantState.CONNECTED


@pytest.mark.slow
def test_second_manager_restores_desired_connected_tenants(make_manager, sim):
    first = make_manager(instance_id="first")
    jids = {}
    for tenant in ("a", "b", "c"):
        first.connect(tenant)
        jids[tenant] = first.wait_for(tenant, CONNECTED, timeout=5).jid
    first.remove("c")
    first.stop()
    assert sim.open_sockets() == 0

    second = make_manager(instance_id="second")
    for tenant in ("a", "b"):
        status = second.wait_for(tenant, CONNECTED, timeout=5)
        assert status.jid == jids[tenant]  # resumed, not re-paired
        assert status.owner == "second"
    assert second.status("c").state is TenantState.STOPPED
    assert not second.is_connection_active("c")
    assert sim.max_concurrent_sockets() == 1
    assert len(sim.accounts()) == 3


def test_restore_leaves_parked_tenants_for_the_operator(make_manager, sim):
    first = make_manager(instance_id="first")
    first.connect("rogued")
    jid = first.wait_for("rogued", CONNECTED, timeout=5).jid
    sim.connect_rogue(jid)
    first.wait_for("rogued", TenantState.CONFLICT, timeout=5)
    first.stop()

    second = make_manager(instance_id="second")
    assert second.status("rogued").state is TenantState.CONFLICT
    assert sim.dial_attempts("rogued") == 1  # not reconnected behind the operator's back
    assert second.is_connection_active("rogued") is False


@pytest.mark.slow
def test_a_tenant_held_by_a_live_instance_is_standby_elsewhere(make_manager, sim):
    first = make_manager(instance_id="first")
    first.connect("t1")
    first.wait_for("t1", CONNECTED, timeout=5)

    second = make_manager(instance_id="second")
    status = second.connect("t1")
    assert status.state is TenantState.STANDBY
    assert status.owner == "first"
    assert sim.dial_attempts("t1") == 1
    assert sim.max_concurrent_sockets() == 1


@pytest.mark.slow
def test_two_managers_restoring_the_same_tenants_at_once_never_open_two_sockets(make_manager, sim):
    tenants = [f"t{i:03d}" for i in range(150)]  # three claim batches each
    seed = make_manager(instance_id="seed")
    for tenant in tenants:
        seed.connect(tenant)
    for tenant in tenants:
        seed.wait_for(tenant, CONNECTED, timeout=30)
    seed.stop()
    dials = sim.dial_attempts()

    managers: dict[str, object] = {}
    go = threading.Barrier(2)

    def start(name: str) -> None:
        go.wait(10)
        managers[name] = make_manager(instance_id=name)  # its first pass claims in batches

    starters = [threading.Thread(target=start, args=(name,)) for name in ("a", "b")]
    for thread in starters:
        thread.start()
    for thread in starters:
        thread.join(60)
    assert set(managers) == {"a", "b"}

    def holder(tenant: str) -> str | None:
        for name, mgr in managers.items():
            if mgr.is_connection_active(tenant):
                return name
        return None

    end = time.monotonic() + 30
    while time.monotonic() < end and any(holder(t) is None for t in tenants):
        time.sleep(POLL_INTERVAL_S)
    assert all(holder(t) is not None for t in tenants)
    assert sim.max_concurrent_sockets() == 1
    assert sim.dial_attempts() - dials == len(tenants)  # each resumed once, by one of them
    assert len(sim.accounts()) == len(tenants)  # no tenant paired a second device


@pytest.mark.slow
def test_embedded_database_when_no_url_is_given(clock):
    # A folder of its own, not pytest's tmp_path: another pytest session on this machine may
    # clean old basetemps while the embedded server still runs in one.
    with tempfile.TemporaryDirectory(prefix="wamgr-test-home-") as folder:
        home = Path(folder) / "home"
        sim = SimWhatsApp(auto_pair=True, clock=clock)
        config = Config(database_url=None, home=home, transport=sim, instance_id="a")
        with ConnectionManager(config) as mgr:
            mgr.connect("t1")
            jid = mgr.wait_for("t1", CONNECTED, timeout=10).jid
        assert (home / "pgdata" / "PG_VERSION").exists()
        with ConnectionManager(config) as mgr:
            assert mgr.wait_for("t1", CONNECTED, timeout=10).jid == jid


@pytest.mark.slow
def test_the_neonize_transport_is_chosen_by_name_and_hosts_end_with_the_manager(
    database_url, tmp_path
):
    config = Config(
        database_url=database_url, home=tmp_path, transport="neonize", claim_tenants=False
    )
    with ConnectionManager(config) as mgr:
        mgr.connect("t1")
        status = mgr.wait_for("t1", TenantState.BACKOFF, timeout=10)  # no route to WhatsApp
        assert "failed to dial whatsapp web websocket" in status.last_error
        transport = mgr.runtime.transport
        pids = [host["pid"] for host in transport.hosts()]
        assert len(pids) == 1
    assert transport.exited_hosts() == [(pids[0], 0)]


# --- the simulator named "sim" keeps its devices in the home folder (issue #13, defect 10) ---


@pytest.mark.slow
def test_the_simulator_named_sim_resumes_its_devices_after_a_restart(make_manager, tmp_path):
    first = make_manager(instance_id="first", transport="sim")
    jids = {}
    for tenant in ("a", "b"):
        first.connect(tenant)
        jids[tenant] = first.wait_for(tenant, CONNECTED, timeout=5).jid
    first.stop()

    second = make_manager(instance_id="second", transport="sim")  # same home, a new simulator
    for tenant in ("a", "b"):
        assert second.wait_for(tenant, CONNECTED, timeout=5).jid == jids[tenant]
    second.connect("c")
    assert second.wait_for("c", CONNECTED, timeout=5).jid not in jids.values()
    assert (tmp_path / "home" / "sim-devices.json").exists()


def _wamgr_argv(database_url: str, home: Path) -> list[str]:
    return [sys.executable, "-m", "wamgr.cli", "--database-url", database_url, "--home", str(home)]


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAMGR_")}
    env.update(WAMGR_CLAIM_INTERVAL="0.2", PYTHONUNBUFFERED="1")
    return env


@contextmanager
def _serving(database_url: str, home: Path, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``wamgr serve --transport sim`` as the README runs it; killed on the way out if alive."""
    argv = [*_wamgr_argv(database_url, home), "serve", "--transport", "sim", "--port", "0"]
    with log_path.open("w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            argv, env=_environment(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=SERVE_DEADLINE_S)


def _tenants(database_url: str) -> dict[str, tuple[str, str | None]]:
    """``{tenant_id: (state, jid)}`` as stored."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute("SELECT tenant_id, state, jid FROM wamgr_tenants").fetchall()
    return {tenant: (state, jid) for tenant, state, jid in rows}


def _wait_connected(
    database_url: str, proc: subprocess.Popen[bytes], log_path: Path, tenants: set[str]
) -> dict[str, str]:
    """Wait until every tenant is stored connected with a JID; returns their JIDs."""
    deadline = time.monotonic() + SERVE_DEADLINE_S
    while True:
        stored = _tenants(database_url)
        if all(stored.get(t, ("", None))[0] == "connected" and stored[t][1] for t in tenants):
            return {t: str(stored[t][1]) for t in tenants}
        log = log_path.read_text(encoding="utf-8", errors="replace")
        assert proc.poll() is None, f"serve exited ({proc.returncode}):\n{log}"
        assert time.monotonic() < deadline, f"not connected: {stored}\nserve output:\n{log}"
        time.sleep(POLL_INTERVAL_S)


@pytest.mark.slow
def test_the_readme_first_session_survives_a_restart_of_serve(database_url, tmp_path):
    home = tmp_path / "home"
    tenants = {"shop-1", "shop-2"}
    added = subprocess.run(
        [*_wamgr_argv(database_url, home), "tenants", "add", *sorted(tenants)],
        env=_environment(),
        capture_output=True,
        timeout=SERVE_DEADLINE_S,
    )
    assert added.returncode == 0, added.stderr.decode()

    logs = [tmp_path / "serve-1.log", tmp_path / "serve-2.log"]
    jids = []
    for log_path in logs:
        with _serving(database_url, home, log_path) as proc:
            jids.append(_wait_connected(database_url, proc, log_path, tenants))
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=SERVE_DEADLINE_S) == 0, log_path.read_text()

    assert jids[1] == jids[0]  # resumed, not paired again
    assert len(set(jids[0].values())) == 2
    with psycopg.connect(database_url, autocommit=True) as conn:
        states = conn.execute("SELECT DISTINCT new_state FROM wamgr_status_history").fetchall()
    assert "logged_out" not in {state for (state,) in states}
    for log_path in logs:
        log = log_path.read_text(encoding="utf-8", errors="replace")
        for bad in ("UniqueViolation", "logged_out", "failed handling", "Traceback", "conflict"):
            assert bad not in log, log
