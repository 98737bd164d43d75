"""RegistryActor: one actor per tenant, and none created once the process began stopping."""

from __future__ import annotations

import pykka
import pytest

from wamgr import ManagerStopped
from wamgr.actors import messages as m
from wamgr.actors.registry import RegistryActor


class _Idle(pykka.ThreadingActor):
    pass


@pytest.fixture
def registry():
    made: list[pykka.ActorRef] = []

    def make_tenant(tenant_id: str, registry: pykka.ActorRef) -> pykka.ActorRef:
        made.append(_Idle.start())
        return made[-1]

    ref = RegistryActor.start(make_tenant)
    yield ref
    for tenant in made:
        tenant.stop()
    ref.stop()


def test_get_or_create_makes_one_actor_per_tenant(registry):
    first = registry.ask(m.GetOrCreate("t1"), timeout=5)
    assert registry.ask(m.GetOrCreate("t1"), timeout=5) is first
    assert registry.ask(m.AllTenants(), timeout=5) == {"t1": first}


def test_no_tenant_actor_is_created_once_shutdown_began(registry):
    first = registry.ask(m.GetOrCreate("t1"), timeout=5)
    assert registry.ask(m.BeginShutdown(), timeout=5) == {"t1": first}
    with pytest.raises(ManagerStopped):
        registry.ask(m.GetOrCreate("t2"), timeout=5)
    assert registry.ask(m.GetOrCreate("t1"), timeout=5) is first  # it exists: it is told to stop
    assert registry.ask(m.AllTenants(), timeout=5) == {"t1": first}
