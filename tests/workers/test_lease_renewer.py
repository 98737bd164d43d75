"""The lease renewer: renews off the caller's thread and reports every outcome, failures too."""

from __future__ import annotations

import queue
import threading

import pytest

from wamgr.clock import VirtualClock
from wamgr.errors import DatabaseUnavailable
from wamgr.store.leases import Renewed
from wamgr.workers.lease_renewer import LeaseRenewer, Renewal

WAIT_S = 5.0


class FakeLeases:
    """Stands for LeaseStore.renew: renews the tenants in ``held`` while ``instance_held``,
    or raises ``fail``."""

    def __init__(self, held: set[str]) -> None:
        self.held = held
        self.instance_held = True
        self.fail: Exception | None = None
        self.calls: list[tuple[str, dict[str, int], float]] = []
        self.threads: list[str] = []

    def renew(self, owner: str, tokens: dict[str, int], ttl_s: float):
        self.calls.append((owner, dict(tokens), ttl_s))
        self.threads.append(threading.current_thread().name)
        if self.fail is not None:
            raise self.fail
        if not self.instance_held:
            return Renewed(False, frozenset())
        return Renewed(True, frozenset(tenant for tenant in tokens if tenant in self.held))


@pytest.fixture
def reports() -> queue.SimpleQueue[Renewal]:
    return queue.SimpleQueue()


def _renewer(leases: FakeLeases, clock: VirtualClock, reports) -> LeaseRenewer:
    return LeaseRenewer(
        leases,  # type: ignore[arg-type]
        "inst-0",
        ttl_s=30.0,
        clock=clock,
        report=reports.put,
    )


def test_renewals_run_on_the_renewer_and_report_what_was_renewed(clock, reports):
    leases = FakeLeases(held={"a"})
    renewer = _renewer(leases, clock, reports)
    renewer.start()
    try:
        sent_at = clock.monotonic()
        renewer.renew({"a": 1, "b": 2})
        renewal = reports.get(timeout=WAIT_S)
    finally:
        assert renewer.stop(WAIT_S)
    assert renewal.sent_at == sent_at
    assert (renewal.tokens, renewal.renewed, renewal.error) == ({"a": 1, "b": 2}, {"a"}, None)
    assert renewal.latency_s >= 0
    assert leases.calls == [("inst-0", {"a": 1, "b": 2}, 30.0)]
    assert leases.threads == ["wamgr-lease-renewer"]


def test_a_failed_renewal_is_reported_and_the_next_one_still_runs(clock, reports, logs):
    leases = FakeLeases(held={"a"})
    renewer = _renewer(leases, clock, reports)
    renewer.start()
    try:
        leases.fail = DatabaseUnavailable("statement timeout")
        renewer.renew({"a": 1})
        refused = reports.get(timeout=WAIT_S)
        leases.fail = RuntimeError("a bug")
        renewer.renew({"a": 1})
        crashed = reports.get(timeout=WAIT_S)
        leases.fail = None
        renewer.renew({"a": 1})
        renewed = reports.get(timeout=WAIT_S)
    finally:
        assert renewer.stop(WAIT_S)
    assert refused.renewed == frozenset() and "statement timeout" in (refused.error or "")
    assert crashed.renewed == frozenset() and crashed.error == "RuntimeError('a bug')"
    assert renewed.renewed == {"a"} and renewed.error is None
    assert any("lease renewal crashed" in line and "a bug" in line for line in logs)


def test_a_renewal_that_finds_the_instance_id_taken_says_so(clock, reports):
    leases = FakeLeases(held={"a"})
    leases.instance_held = False  # another process claimed our instance id
    renewer = _renewer(leases, clock, reports)
    renewer.start()
    try:
        renewer.renew({"a": 1})
        lost = reports.get(timeout=WAIT_S)
        renewer.renew({})  # no lease held: the instance row is renewed all the same
        empty = reports.get(timeout=WAIT_S)
    finally:
        assert renewer.stop(WAIT_S)
    assert (lost.instance_held, lost.renewed, lost.error) == (False, frozenset(), None)
    assert empty.instance_held is False
    assert leases.calls[-1] == ("inst-0", {}, 30.0)
