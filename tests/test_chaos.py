"""Chaos with real processes: one `wamgr sim`, three `wamgr serve`, one PostgreSQL, 30 tenants.

In turn: start a fourth `serve` with the instance id of a live one (it must be refused, and
take nothing); SIGKILL an owner; SIGSTOP an owner for longer than the TTL, then SIGCONT it; cut
every database connection; freeze an owner's database connection (a partition: nothing
forwarded, nothing closed) for longer than the TTL, then thaw it; SIGTERM an instance. After
each fault every tenant is connected again within TTL + claim interval + first backoff.
Across all of it no account ever has two sockets at once, except the one collision no lease
can prevent: a *paused* owner's socket is still open when its successor connects. The paused
process, once resumed, fences itself and never reconnects, so those accounts see no second
collision. A partitioned owner fences itself by its renew deadline, before the TTL: its
accounts see no collision at all.

Every instance reaches PostgreSQL through its own freezable proxy (tests/dbproxy.py).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from dbproxy import FreezableProxy

from wamgr.config import Config
from wamgr.status import Desired
from wamgr.store.db import Database
from wamgr.store.tenants import TenantStore
from wamgr.transport.sim_server import fetch_stats, send_inbound

TENANTS = [f"c{i:02d}" for i in range(30)]
TTL_S, RENEW_INTERVAL_S, RENEW_DEADLINE_S, CLAIM_INTERVAL_S = 3.0, 0.5, 2.0, 0.5
FIRST_BACKOFF_S = 3.0
RECOVERY_BOUND_S = TTL_S + CLAIM_INTERVAL_S + FIRST_BACKOFF_S
#: Room for status rows to reach the database and for this test's polling.
SLACK_S = 1.5

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """The processes of one chaos run, and what the test reads from them."""

    def __init__(self, database_url: str, logs: Path):
        self.url = database_url
        self.logs = logs
        self.port = _free_port()
        self.procs: dict[str, subprocess.Popen] = {}
        self.proxies: dict[str, FreezableProxy] = {}
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("WAMGR_")},
            "WAMGR_DATABASE_URL": database_url,
            "WAMGR_LEASE_TTL": str(TTL_S),
            "WAMGR_RENEW_INTERVAL": str(RENEW_INTERVAL_S),
            "WAMGR_RENEW_DEADLINE": str(RENEW_DEADLINE_S),
            "WAMGR_CLAIM_INTERVAL": str(CLAIM_INTERVAL_S),
            "WAMGR_CAPACITY": "15",
        }

    def spawn(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "wamgr.cli", *args],
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.procs[name] = proc
        return proc

    def start_sim(self) -> None:
        self.spawn("sim", "sim", "--port", str(self.port))
        _until(lambda: _reachable(self.port), 10, "the simulator to listen")

    def start_instance(self, name: str, instance_id: str | None = None) -> subprocess.Popen:
        proxy = self.proxies[name] = FreezableProxy.for_database(self.url).start()
        return self.spawn(
            name,
            "serve",
            "--transport",
            f"sim://127.0.0.1:{self.port}",
            "--instance-id",
            instance_id or name,
            "--port",
            "0",  # several instances on one host: each its own HTTP port
            env={"WAMGR_DATABASE_URL": proxy.database_url},
        )

    def stats(self) -> dict:
        return fetch_stats("127.0.0.1", self.port, per_account=True)

    def rows(self) -> dict[str, tuple[str, str | None, str | None]]:
        with psycopg.connect(self.url) as conn:
            rows = conn.execute("SELECT tenant_id, state, owner, jid FROM wamgr_tenants").fetchall()
        return {t: (state, owner, jid) for t, state, owner, jid in rows}

    def owners(self) -> dict[str, list[str]]:
        by_owner: dict[str, list[str]] = {}
        for tenant, (state, owner, _) in self.rows().items():
            if state == "connected" and owner:
                by_owner.setdefault(owner, []).append(tenant)
        return by_owner

    def all_connected(self, live: set[str]) -> bool:
        """Every tenant connected by a live instance, one socket each, in the simulator."""
        rows = self.rows()
        if len(rows) != len(TENANTS):
            return False
        if not all(state == "connected" and owner in live for state, owner, _ in rows.values()):
            return False
        jids = {jid for _, _, jid in rows.values()}
        return len(jids) == len(TENANTS)

    def customers_write(self, jids: list[str], done: threading.Event) -> None:
        """Write to every account in ``jids`` every second until ``done``."""
        while not done.is_set():
            for jid in jids:
                send_inbound("127.0.0.1", self.port, jid, "15550002222@s.whatsapp.net", "hello?")
            done.wait(1.0)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
        for proc in self.procs.values():
            proc.wait(10)
        for proxy in self.proxies.values():
            proxy.stop()


def _reachable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


def _until(predicate, timeout: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def test_chaos_three_instances_thirty_tenants(database_url, tmp_path):
    cluster = Cluster(database_url, tmp_path)
    try:
        _run(cluster)
    except BaseException:
        for log in sorted(tmp_path.glob("*.log")):
            print(f"===== {log.name}\n{log.read_text(errors='replace')[-4000:]}")
        raise
    finally:
        cluster.stop_all()


def test_sigkill_with_the_default_lease_settings(database_url, tmp_path):
    """The defaults' failover: the holder of 30 tenants is killed; the other instance has
    them all within lease_ttl + claim_interval (+ slack), and no account ever had two."""
    cluster = Cluster(database_url, tmp_path)
    for name in ("WAMGR_LEASE_TTL", "WAMGR_RENEW_INTERVAL", "WAMGR_RENEW_DEADLINE"):
        del cluster.env[name]
    del cluster.env["WAMGR_CLAIM_INTERVAL"], cluster.env["WAMGR_CAPACITY"]
    defaults = Config()
    try:
        cluster.start_sim()
        holder = cluster.start_instance("s0")
        _want_all(cluster.url)
        _until(lambda: cluster.all_connected({"s0"}), 30, "all 30 tenants connected on s0")
        cluster.start_instance("s1")
        started = cluster.logs / "s1.log"
        _until(lambda: b"manager s1 started" in started.read_bytes(), 30, "s1 to start")
        holder.kill()
        took = _until(
            lambda: cluster.all_connected({"s1"}),
            defaults.lease_ttl_s + defaults.claim_interval_s + SLACK_S,
            "s1 to take every tenant over",
        )
        assert took > defaults.lease_ttl_s - defaults.renew_interval_s - SLACK_S  # not sooner
        assert cluster.stats()["max_concurrent_sockets"] == 1
    except BaseException:
        for log in sorted(tmp_path.glob("*.log")):
            print(f"===== {log.name}\n{log.read_text(errors='replace')[-4000:]}")
        raise
    finally:
        cluster.stop_all()


def _want_all(url: str) -> None:
    db = Database(url, max_size=2)
    db.open()
    try:
        store = TenantStore(db)
        for tenant in TENANTS:
            store.set_desired(tenant, Desired.CONNECTED)
    finally:
        db.close()


def _run(cluster: Cluster) -> None:
    cluster.start_sim()
    for name in ("s0", "s1", "s2"):
        cluster.start_instance(name)
    _want_all(cluster.url)
    live = {"s0", "s1", "s2"}
    _until(lambda: cluster.all_connected(live), 30, "all 30 tenants connected")
    assert cluster.stats()["max_concurrent_sockets"] == 1

    # 0. A process started with the id of a live instance (a rolling deploy with a fixed id)
    #    is refused before it claims anything: one line naming the holder, exit code 11.
    duplicate = cluster.start_instance("dup", instance_id="s1")
    assert duplicate.wait(30) == 11
    refusal = (cluster.logs / "dup.log").read_text()
    assert "wamgr: instance id 's1' is in use by another live process (pid" in refusal
    assert "serving" not in refusal
    assert cluster.all_connected(live)
    assert cluster.stats()["max_concurrent_sockets"] == 1

    # 1. SIGKILL the instance holding the most tenants; a fresh one joins for spare capacity.
    victim = max(cluster.owners().items(), key=lambda kv: len(kv[1]))[0]
    cluster.procs[victim].kill()
    live.discard(victim)
    took = _until(lambda: cluster.all_connected(live), 20, f"recovery from SIGKILL of {victim}")
    assert took <= RECOVERY_BOUND_S + SLACK_S, f"SIGKILL recovery took {took:.1f} s"
    assert cluster.stats()["max_concurrent_sockets"] == 1
    cluster.start_instance("s3")
    live.add("s3")

    # 2. SIGSTOP an owner for longer than the TTL, then SIGCONT it.
    paused = max(cluster.owners().items(), key=lambda kv: len(kv[1]))[0]
    paused_jids = {jid for _, owner, jid in cluster.rows().values() if owner == paused}
    cluster.procs[paused].send_signal(signal.SIGSTOP)
    took = _until(
        lambda: cluster.all_connected(live - {paused}), 20, f"takeover from paused {paused}"
    )
    assert took <= RECOVERY_BOUND_S + SLACK_S, f"takeover from a paused owner took {took:.1f} s"
    time.sleep(TTL_S - took if took < TTL_S else 0)
    cluster.procs[paused].send_signal(signal.SIGCONT)
    time.sleep(TTL_S)  # time enough to reconnect, if it wrongly would
    assert cluster.all_connected(live - {paused})

    # 3. Cut every database connection mid-run.
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    took = _until(lambda: cluster.all_connected(live), 20, "recovery from cut connections")
    assert took <= RECOVERY_BOUND_S + SLACK_S

    # 4. Freeze the database connections of the instance holding the most tenants (packets
    #    dropped, nothing closed) for longer than the TTL, while customers write to its
    #    accounts (each message is a database write on the way in). It fences itself by its
    #    renew deadline; the others take its tenants over after the TTL; thawed, it stands by.
    partitioned = max(
        ((o, t) for o, t in cluster.owners().items() if o != paused), key=lambda kv: len(kv[1])
    )[0]
    written_to = [jid for _, owner, jid in cluster.rows().values() if owner == partitioned]
    proxy = cluster.proxies[partitioned]
    customers_done = threading.Event()
    customers = threading.Thread(
        target=cluster.customers_write, args=(written_to, customers_done), name="customers"
    )
    proxy.freeze()
    customers.start()
    try:
        took = _until(
            lambda: cluster.all_connected(live - {partitioned}),
            20,
            f"takeover from partitioned {partitioned}",
        )
        assert took <= RECOVERY_BOUND_S + SLACK_S, f"takeover from a partition took {took:.1f} s"
        time.sleep(max(0.0, TTL_S + 2.0 - took))
    finally:
        customers_done.set()
        customers.join(10)
        proxy.thaw()
    took = _until(lambda: cluster.all_connected(live), 20, "every tenant after the thaw")
    assert took <= RECOVERY_BOUND_S + SLACK_S
    time.sleep(TTL_S)  # time enough for the thawed instance to reconnect, if it wrongly would
    assert cluster.all_connected(live)
    assert cluster.stats()["max_concurrent_sockets"] <= 2  # the paused owner's, at most

    # 5. SIGTERM one instance that holds tenants: it hands over at once.
    leaving = max(
        ((o, t) for o, t in cluster.owners().items() if o != paused), key=lambda kv: len(kv[1])
    )[0]
    cluster.procs[leaving].send_signal(signal.SIGTERM)
    assert cluster.procs[leaving].wait(20) == 0
    live.discard(leaving)
    took = _until(lambda: cluster.all_connected(live), 20, f"takeover after SIGTERM of {leaving}")
    assert took <= RECOVERY_BOUND_S + SLACK_S

    # The promise, over the whole run.
    stats = cluster.stats()
    assert stats["open_sockets"] == len(TENANTS)
    for jid, account in stats["per_account"].items():
        if jid in paused_jids:
            assert account["collisions"] <= 1, f"{jid}: the paused owner reconnected"
        else:
            assert account["collisions"] == 0, f"{jid} had two sockets at once"
    rows = cluster.rows()
    assert sorted(rows) == TENANTS
    assert {state for state, _, _ in rows.values()} == {"connected"}
