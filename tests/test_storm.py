"""A storm of concurrent calls: the simulated WhatsApp never sees two sockets for an account."""

from __future__ import annotations

import random
import threading
import time

import psycopg

from wamgr import Config, ConnectionManager, TenantState
from wamgr.errors import WamgrError

TENANTS = [f"t{i:03d}" for i in range(200)]
THREADS = 8
CALLS_PER_THREAD = 2_000
CALL_TIMEOUT_S = 10.0


def test_storm_of_connect_reconnect_remove(database_url, sim, clock, tmp_path, thread_baseline):
    config = Config(
        database_url=database_url,
        home=tmp_path,
        transport=sim,
        instance_id="storm",
        clock=clock,
        claim_interval_s=3600.0,
        lease_ttl_s=1e6,
        renew_deadline_s=5e5,
        renew_interval_s=1e5,
    )
    mgr = ConnectionManager(config).start()
    errors: list[BaseException] = []
    slowest = [0.0]
    counts = {"connect": 0, "reconnect": 0, "remove": 0, "is_connection_active": 0}
    lock = threading.Lock()

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(CALLS_PER_THREAD):
            tenant = rng.choice(TENANTS)
            op = rng.choices(
                ["connect", "reconnect", "remove", "is_connection_active"], [4, 2, 2, 4]
            )[0]
            started = time.monotonic()
            try:
                if op == "remove":
                    mgr.remove(tenant, do_logout=rng.random() < 0.1, timeout=CALL_TIMEOUT_S)
                else:
                    getattr(mgr, op)(tenant, timeout=CALL_TIMEOUT_S)
            except WamgrError as exc:
                errors.append(exc)
            took = time.monotonic() - started
            with lock:
                counts[op] += 1
                slowest[0] = max(slowest[0], took)

    threads = [
        threading.Thread(target=worker, args=(i,), name=f"storm-{i}") for i in range(THREADS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not any(t.is_alive() for t in threads)

    assert errors == []
    assert sum(counts.values()) == THREADS * CALLS_PER_THREAD
    assert slowest[0] < CALL_TIMEOUT_S
    assert sim.max_concurrent_sockets() == 1

    # every tenant ends where its last call left it, with at most one socket open
    for tenant in TENANTS:
        status = mgr.status(tenant) if _known(mgr, tenant) else None
        if status is not None and status.state is TenantState.CONNECTED:
            assert status.jid is not None
            assert sim.open_sockets(status.jid) == 1

    mgr.stop()
    assert sim.open_sockets() == 0
    assert thread_baseline() == set()
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM wamgr_leases").fetchone() == (0,)
        connected = conn.execute(
            "SELECT count(*) FROM wamgr_tenants WHERE state = 'connected'"
        ).fetchone()
        assert connected == (0,)


def _known(mgr, tenant) -> bool:
    try:
        mgr.status(tenant)
    except WamgrError:
        return False
    return True
