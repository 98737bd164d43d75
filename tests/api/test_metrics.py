"""``GET /metrics``: the Prometheus text format, parsed with prometheus-client's own parser."""

from __future__ import annotations

import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from wamgr import TenantState

CONNECTED = TenantState.CONNECTED
#: Seconds to wait for a metric bumped on another thread (the lease renewer).
DEADLINE_S = 5.0


def _scrape(api: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``/metrics`` by (name, sorted labels)."""
    response = api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_move_when_a_tenant_connects_drops_and_stops(
    make_manager, serve_api, sim, clock
) -> None:
    mgr = make_manager()
    api = serve_api(mgr)
    before = _scrape(api)
    assert _value(before, "wamgr_tenants", state="connected") == 0
    assert _value(before, "wamgr_connects_total") == 0
    assert ("wamgr_webhook_queue_depth", ()) in before
    assert ("wamgr_lease_renewal_seconds_count", ()) in before

    mgr.connect("t1")
    jid = mgr.wait_for("t1", CONNECTED, timeout=5).jid
    connected = _scrape(api)
    assert _value(connected, "wamgr_tenants", state="connected") == 1
    assert _value(connected, "wamgr_tenants", state="stopped") == 0
    assert _value(connected, "wamgr_connects_total") == 1

    sim.drop(jid, "network")
    mgr.wait_for("t1", TenantState.BACKOFF, timeout=5)
    clock.advance(3.1)  # the first backoff delay
    mgr.wait_for("t1", CONNECTED, timeout=5)
    mgr.remove("t1")
    after = _scrape(api)
    assert _value(after, "wamgr_closes_total", reason="network") == 1
    assert _value(after, "wamgr_backoff_attempts_total") == 1
    assert _value(after, "wamgr_connects_total") == 2
    assert _value(after, "wamgr_closes_total", reason="requested") == 1
    assert _value(after, "wamgr_tenants", state="stopped") == 1
    assert _value(after, "wamgr_tenants", state="connected") == 0


def test_lease_renewals_are_counted_and_timed(make_manager, serve_api, clock) -> None:
    mgr = make_manager(renew_interval_s=1.0)
    api = serve_api(mgr)
    mgr.connect("t1")
    mgr.wait_for("t1", CONNECTED, timeout=5)

    clock.advance(1.5)

    deadline = time.monotonic() + DEADLINE_S
    while _value(_scrape(api), "wamgr_lease_renewals_total", result="ok") < 1:
        assert time.monotonic() < deadline, "no renewal counted"
        time.sleep(0.02)
    samples = _scrape(api)
    assert _value(samples, "wamgr_lease_renewal_seconds_count") >= 1
    assert _value(samples, "wamgr_lease_renewal_seconds_sum") > 0


def test_each_manager_counts_its_own(make_manager, serve_api) -> None:
    first, second = make_manager(), make_manager()
    first.connect("a")
    first.wait_for("a", CONNECTED, timeout=5)

    assert _value(_scrape(serve_api(first)), "wamgr_connects_total") == 1
    assert _value(_scrape(serve_api(second)), "wamgr_connects_total") == 0
