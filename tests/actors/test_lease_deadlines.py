"""The keeper's deadline check with many grants: each lease is fenced at its own deadline,
whatever order the grants came in (one check is scheduled, for the soonest)."""

from __future__ import annotations

import pykka
import pytest

from wamgr.actors.fence import LinkFence
from wamgr.actors.leases import LeaseGranted, LeaseKeeper
from wamgr.clock import VirtualClock
from wamgr.config import Config
from wamgr.errors import DatabaseUnavailable
from wamgr.workers.scheduler import Scheduler


class _DownLeases:
    """A lease store whose every renewal fails: only the deadlines decide."""

    def renew(self, owner, tokens, ttl_s):
        raise DatabaseUnavailable("down")


class _Tenant(pykka.ThreadingActor):
    def on_receive(self, message):
        return None


@pytest.fixture
def keeper():
    clock = VirtualClock()
    config = Config(
        transport="sim",
        instance_id="me",
        lease_ttl_s=3000.0,
        renew_interval_s=1000.0,
        renew_deadline_s=2000.0,
    )
    scheduler = Scheduler(clock)
    scheduler.start()
    ref = LeaseKeeper.start(config, clock, scheduler, _DownLeases())
    tenant = _Tenant.start()
    yield clock, ref, tenant
    for actor in (ref, tenant):
        actor.stop()
    scheduler.stop(5.0)


def test_each_grant_is_fenced_at_its_own_deadline_in_any_order(keeper, wait_until):
    clock, ref, tenant = keeper
    now = clock.monotonic()
    fences = {name: LinkFence(name, token) for token, name in enumerate("abc", 1)}
    # granted in this order, sent at: a now, b 1500 s earlier, c 500 s earlier
    for name, sent_at in (("a", now), ("b", now - 1500.0), ("c", now - 500.0)):
        ref.tell(LeaseGranted(name, 1, tenant, sent_at, fences[name]))
    clock.advance(499.0)
    assert not any(f.tripped for f in fences.values())
    clock.advance(1.0)  # b's deadline: 2000 s after it was sent
    wait_until(lambda: fences["b"].tripped)
    assert not fences["c"].tripped and not fences["a"].tripped
    clock.advance(1000.0)  # c's
    wait_until(lambda: fences["c"].tripped)
    assert not fences["a"].tripped
    clock.advance(500.0)  # a's
    wait_until(lambda: fences["a"].tripped)
