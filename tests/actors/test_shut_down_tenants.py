"""shut_down_tenants: links close a window at a time, leases go back in batches as they close."""

from __future__ import annotations

import threading

import pykka

from wamgr.actors import registry as reg
from wamgr.actors.messages import BeginShutdown, Shutdown


class _Tenant(pykka.ThreadingActor):
    """Closes its link when told Shutdown, recording how many others were closing then."""

    def __init__(self, name: str, closing: list[str], peak: list[int], lock: threading.Lock):
        super().__init__()
        self.name, self.closing, self.peak, self.lock = name, closing, peak, lock

    def on_receive(self, message):
        if isinstance(message, Shutdown):
            with self.lock:
                self.closing.append(self.name)
                self.peak[0] = max(self.peak[0], len(self.closing))
            threading.Event().wait(0.01)  # the link takes a moment to close
            with self.lock:
                self.closing.remove(self.name)
            message.done.set()


class _Registry(pykka.ThreadingActor):
    def __init__(self, tenants: dict[str, pykka.ActorRef]):
        super().__init__()
        self.tenants = tenants

    def on_receive(self, message):
        return self.tenants if isinstance(message, BeginShutdown) else None


def test_links_close_a_window_at_a_time_and_every_closed_lease_goes_back(monkeypatch):
    monkeypatch.setattr(reg, "SHUTDOWN_WINDOW", 3)
    monkeypatch.setattr(reg, "RELEASE_BATCH", 4)
    closing: list[str] = []
    peak = [0]
    lock = threading.Lock()
    tenants = {f"t{i}": _Tenant.start(f"t{i}", closing, peak, lock) for i in range(10)}
    registry = _Registry.start(tenants)
    released: list[list[str]] = []

    reg.shut_down_tenants(registry, lambda ids: released.append(list(ids)), budget_s=10.0)

    assert peak[0] <= 3  # never more than the window closing at once
    assert [len(batch) for batch in released] == [4, 4, 2]
    assert sorted(t for batch in released for t in batch) == sorted(tenants)
    assert all(not ref.is_alive() for ref in [*tenants.values(), registry])
