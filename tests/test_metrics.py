"""Metrics: the Metrics object on its own, and the counts a running manager keeps.

Samples are read back with prometheus-client's own parser of the text format.
"""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from wamgr import ManagerStopped, TenantState
from wamgr.metrics import Metrics

CONNECTED = TenantState.CONNECTED

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _samples(metrics: Metrics) -> Samples:
    """Every sample of ``metrics.render()`` by (name, sorted labels)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for sample in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


# --- the Metrics object ------------------------------------------------------------------


def test_tenant_states_are_counted_when_scraped_with_every_state_present() -> None:
    states = [TenantState.CONNECTED, TenantState.CONNECTED, TenantState.BACKOFF]
    metrics = Metrics(lambda: states)

    first = _samples(metrics)
    states.append(TenantState.CONNECTED)
    second = _samples(metrics)

    assert _value(first, "wamgr_tenants", state="connected") == 2
    assert _value(second, "wamgr_tenants", state="connected") == 3
    assert _value(first, "wamgr_tenants", state="backoff") == 1
    present = {labels for name, labels in first if name == "wamgr_tenants"}
    assert present == {(("state", s.value),) for s in TenantState}


def test_a_failing_state_source_gives_zeros_instead_of_breaking_the_scrape() -> None:
    def unavailable() -> list[TenantState]:
        raise ManagerStopped()

    metrics = Metrics(unavailable)
    metrics.link_connected()

    samples = _samples(metrics)

    assert all(_value(samples, "wamgr_tenants", state=s.value) == 0 for s in TenantState)
    assert _value(samples, "wamgr_connects_total") == 1


def test_hooks_move_their_metrics() -> None:
    metrics = Metrics()

    metrics.link_closed("network")
    metrics.link_closed("network")
    metrics.backoff_attempt()
    metrics.lease_renewal(0.003, ok=True)
    metrics.lease_renewal(0.2, ok=False)
    metrics.webhook_queue_depth(7)
    metrics.webhook_delivered("https://a.example/h")
    metrics.webhook_failed("https://a.example/h")

    samples = _samples(metrics)
    assert _value(samples, "wamgr_closes_total", reason="network") == 2
    assert _value(samples, "wamgr_backoff_attempts_total") == 1
    assert _value(samples, "wamgr_lease_renewals_total", result="ok") == 1
    assert _value(samples, "wamgr_lease_renewals_total", result="failed") == 1
    assert _value(samples, "wamgr_lease_renewal_seconds_count") == 2
    assert _value(samples, "wamgr_lease_renewal_seconds_bucket", le="0.005") == 1
    assert _value(samples, "wamgr_webhook_queue_depth") == 7
    endpoint = "https://a.example/h"
    assert _value(samples, "wamgr_webhook_deliveries_total", endpoint=endpoint) == 1
    assert _value(samples, "wamgr_webhook_failures_total", endpoint=endpoint) == 1


def test_outbound_hooks_move_their_metrics() -> None:
    metrics = Metrics()
    assert _value(_samples(metrics), "wamgr_outbound_messages_total", outcome="unknown") == 0

    metrics.outbound_depth(12, 30.5)
    metrics.outbound_outcome("sent", 3)
    metrics.outbound_outcome("expired")

    samples = _samples(metrics)
    assert _value(samples, "wamgr_outbound_queued") == 12
    assert _value(samples, "wamgr_outbound_oldest_queued_seconds") == 30.5
    assert _value(samples, "wamgr_outbound_messages_total", outcome="sent") == 3
    assert _value(samples, "wamgr_outbound_messages_total", outcome="expired") == 1


def test_two_metrics_objects_keep_separate_counts() -> None:
    first, second = Metrics(), Metrics()

    first.link_connected()

    assert _value(_samples(first), "wamgr_connects_total") == 1
    assert _value(_samples(second), "wamgr_connects_total") == 0


# --- a running manager ---------------------------------------------------------------------


def test_metrics_move_when_a_tenant_connects_drops_and_stops(make_manager, sim, clock) -> None:
    mgr = make_manager()
    before = _samples(mgr.metrics)
    assert _value(before, "wamgr_tenants", state="connected") == 0
    assert _value(before, "wamgr_connects_total") == 0
    assert ("wamgr_webhook_queue_depth", ()) in before
    assert ("wamgr_lease_renewal_seconds_count", ()) in before

    mgr.connect("t1")
    jid = mgr.wait_for("t1", CONNECTED, timeout=5).jid
    connected = _samples(mgr.metrics)
    assert _value(connected, "wamgr_tenants", state="connected") == 1
    assert _value(connected, "wamgr_tenants", state="stopped") == 0
    assert _value(connected, "wamgr_connects_total") == 1

    sim.drop(jid, "network")
    mgr.wait_for("t1", TenantState.BACKOFF, timeout=5)
    clock.advance(3.1)  # the first backoff delay
    mgr.wait_for("t1", CONNECTED, timeout=5)
    mgr.remove("t1")
    after = _samples(mgr.metrics)
    assert _value(after, "wamgr_closes_total", reason="network") == 1
    assert _value(after, "wamgr_backoff_attempts_total") == 1
    assert _value(after, "wamgr_connects_total") == 2
    assert _value(after, "wamgr_closes_total", reason="requested") == 1
    assert _value(after, "wamgr_tenants", state="stopped") == 1
    assert _value(after, "wamgr_tenants", state="connected") == 0


@pytest.mark.slow
def test_lease_renewals_are_counted_and_timed(make_manager, clock, wait_until) -> None:
    mgr = make_manager(renew_interval_s=1.0)
    mgr.connect("t1")
    mgr.wait_for("t1", CONNECTED, timeout=5)

    clock.advance(1.5)

    wait_until(
        lambda: _value(_samples(mgr.metrics), "wamgr_lease_renewals_total", result="ok") >= 1,
        what="a renewal counted",
    )
    samples = _samples(mgr.metrics)
    assert _value(samples, "wamgr_lease_renewal_seconds_count") >= 1
    assert _value(samples, "wamgr_lease_renewal_seconds_sum") > 0


@pytest.mark.slow
def test_each_manager_counts_its_own(make_manager) -> None:
    first, second = make_manager(), make_manager()
    first.connect("a")
    first.wait_for("a", CONNECTED, timeout=5)

    assert _value(_samples(first.metrics), "wamgr_connects_total") == 1
    assert _value(_samples(second.metrics), "wamgr_connects_total") == 0
