"""A storm of concurrent calls: the simulated WhatsApp never sees two sockets for an account."""

from __future__ import annotations

import random
import threading
import time

import psycopg
import pytest

from wamgr import Config, ConnectionManager, TenantState
from wamgr.errors import WamgrError

CALL_TIMEOUT_S = 10.0


@pytest.mark.parametrize(
    ("tenant_count", "threads", "calls_per_thread"),
    [
        pytest.param(10, 4, 60, id="quick"),
        pytest.param(20, 4, 250, id="small", marks=pytest.mark.slow),
        pytest.param(200, 8, 2_000, id="full", marks=pytest.mark.slow),
    ],
)
def test_storm_of_connect_reconnect_remove(
    database_url, sim, clock, tmp_path, thread_baseline, tenant_count, threads, calls_per_thread
):
    tenants = [f"t{i:03d}" for i in range(tenant_count)]
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
        for _ in range(calls_per_thread):
            tenant = rng.choice(tenants)
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

    workers = [
        threading.Thread(target=worker, args=(i,), name=f"storm-{i}") for i in range(threads)
    ]
    for t in workers:
        t.start()
    for t in workers:
        t.join(300)
    assert not any(t.is_alive() for t in workers)

    assert errors == []
    assert sum(counts.values()) == threads * calls_per_thread
    assert slowest[0] < CALL_TIMEOUT_S
    assert sim.max_concurrent_sockets() == 1

    # every tenant ends where its last call left it, with at most one socket open
    for tenant in tenants:
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
