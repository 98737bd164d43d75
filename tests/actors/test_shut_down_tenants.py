"""shut_down_tenants: every link is told to close at once, leases go back in batches as they
close, a link that does not close is not waited for past the budget."""

from __future__ import annotations

import threading
import time

import pykka

from wamgr.actors import registry as reg
from wamgr.actors.messages import BeginShutdown, Shutdown

WAIT_S = 5.0


class _Tenant(pykka.ThreadingActor):
    """Closes its link when told Shutdown: at once, once ``gate`` opens, or never."""

    def __init__(self, told: list[str], gate: threading.Event | None, never: bool = False):
        super().__init__()
        self.told, self.gate, self.never = told, gate, never

    def on_receive(self, message):
        if isinstance(message, Shutdown):
            self.told.append(self.actor_urn)
            if self.never:
                return
            if self.gate is not None:
                self.gate.wait(WAIT_S)
            message.done.set()


class _Registry(pykka.ThreadingActor):
    def __init__(self, tenants: dict[str, pykka.ActorRef]):
        super().__init__()
        self.tenants = tenants

    def on_receive(self, message):
        return self.tenants if isinstance(message, BeginShutdown) else None


def test_all_are_told_at_once_and_every_closed_lease_goes_back_in_batches(monkeypatch):
    monkeypatch.setattr(reg, "RELEASE_BATCH", 4)
    told: list[str] = []
    gate = threading.Event()
    tenants = {f"t{i}": _Tenant.start(told, gate) for i in range(10)}
    registry = _Registry.start(tenants)
    released: list[list[str]] = []

    def release(ids: list[str]) -> None:
        released.append(list(ids))

    def open_gate_once_all_told() -> None:  # no tenant closes before every one was told
        deadline = time.monotonic() + WAIT_S
        while len(told) < len(tenants) and time.monotonic() < deadline:
            time.sleep(0.005)
        gate.set()

    opener = threading.Thread(target=open_gate_once_all_told)
    opener.start()
    reg.shut_down_tenants(registry, release, budget_s=WAIT_S)
    opener.join(WAIT_S)

    assert len(told) == len(tenants)  # all told while none had closed: not a window
    assert all(len(batch) <= 4 for batch in released)
    assert sorted(t for batch in released for t in batch) == sorted(tenants)
    assert all(not ref.is_alive() for ref in [*tenants.values(), registry])


def test_a_link_that_never_closes_holds_back_nothing_and_is_not_waited_for(logs):
    told: list[str] = []
    stuck = _Tenant.start(told, None, never=True)
    quick = {f"q{i}": _Tenant.start(told, None) for i in range(3)}
    tenants = {"stuck": stuck, **quick}
    registry = _Registry.start(tenants)
    released: list[list[str]] = []

    began = time.monotonic()
    reg.shut_down_tenants(registry, lambda ids: released.append(list(ids)), budget_s=0.5)

    assert time.monotonic() - began < 0.5 + 2 * reg.MIN_WAIT_S + 1.0
    assert sorted(t for batch in released for t in batch) == sorted(quick)  # not "stuck"
    assert any("1 links did not close within the stop budget" in line for line in logs)
    assert all(not ref.is_alive() for ref in [*quick.values(), registry])
    stuck.stop()
