"""The claim loop and the connect rate: capacity per instance, reconnects spread out."""

from __future__ import annotations

import itertools
import time

import pytest

from wamgr import TenantState
from wamgr.status import Desired
from wamgr.store.leases import LeaseStore

CONNECTED = TenantState.CONNECTED


def _want(mgr, *tenants):
    for tenant in tenants:
        mgr.tenants_store.set_desired(tenant, Desired.CONNECTED)


def _running(mgr):
    return {
        s.tenant_id
        for s in mgr.statuses()
        if s.state is CONNECTED and s.owner == mgr.config.instance_id
    }


@pytest.mark.slow
def test_an_instance_takes_no_more_than_its_capacity(make_manager, sim, wait_until):
    seed = make_manager(instance_id="seed")
    _want(seed, *[f"t{i}" for i in range(5)])
    seed.stop()

    small = make_manager(instance_id="small", capacity=2, claim_interval_s=0.05)
    wait_until(lambda: len(_running(small)) == 2, timeout=10)
    big = make_manager(instance_id="big", capacity=10, claim_interval_s=0.05)
    wait_until(lambda: len(_running(big)) == 3, timeout=10)
    time.sleep(0.2)  # several more claim passes: nobody exceeds capacity or steals
    assert len(_running(small)) == 2 and len(_running(big)) == 3
    assert sim.max_concurrent_sockets() == 1


def test_the_claim_loop_picks_up_tenants_added_and_removed_elsewhere(make_manager, sim):
    serving = make_manager(instance_id="serving", claim_interval_s=0.05)
    shell = serving.tenants_store  # stands for `wamgr tenants add` from another process
    shell.set_desired("late", Desired.CONNECTED)
    serving.wait_for("late", CONNECTED, timeout=5)
    shell.set_desired("late", Desired.STOPPED)
    serving.wait_for("late", TenantState.STOPPED, timeout=5)
    assert sim.open_sockets() == 0


@pytest.mark.slow
def test_connect_rate_spreads_reconnects_after_a_blip(make_manager, sim, clock):
    mgr = make_manager(connect_rate=2.0)
    jids = {}
    for i in range(6):
        mgr.connect(f"t{i}")
    for i in range(6):
        jids[f"t{i}"] = mgr.wait_for(f"t{i}", CONNECTED, timeout=5).jid
    for jid in jids.values():  # one network blip drops them all
        sim.drop(jid, "network")
    retry_at = sorted(
        mgr.wait_for(t, TenantState.BACKOFF, timeout=5).next_retry_at.timestamp() for t in jids
    )
    now = clock.time()
    assert retry_at[0] - now == 3.0
    gaps = [b - a for a, b in itertools.pairwise(retry_at)]
    assert all(abs(gap - 0.5) < 1e-6 for gap in gaps)  # 2 per second
    clock.advance(3.0 + 2.5)
    for tenant in jids:
        mgr.wait_for(tenant, CONNECTED, timeout=5)


@pytest.mark.slow
def test_a_crashed_holders_tenant_is_taken_when_its_lease_expires_not_a_pass_later(
    make_manager, sim, db
):
    seed = make_manager(instance_id="seed")
    _want(seed, "t1")
    seed.stop()
    leases = LeaseStore(db)
    assert leases.acquire("t1", "crashed", ttl_s=2.0) is not None  # its last renewal
    taker = make_manager(instance_id="taker", claim_interval_s=3600.0)
    state = taker.status("t1").state
    if leases.live_owner("t1") == "crashed":  # (unless this host took 2 s to start it)
        assert state is not CONNECTED  # the first pass left it
    status = taker.wait_for("t1", CONNECTED, timeout=5)  # no pass for an hour but this one
    assert status.owner == "taker"
