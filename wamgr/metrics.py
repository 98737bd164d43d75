"""Prometheus metrics of one manager, served at ``GET /metrics``.

Each manager has its own ``CollectorRegistry`` (never the global default one), so several
managers in one process keep separate counts. Counters are bumped where things happen, by
the tenant actors and the lease keeper (a counter increment takes a lock for nanoseconds;
it never blocks an actor); the tenants-by-state gauge is computed at scrape time from the
registry actor's table.

=================================== ======================================================
``wamgr_tenants{state}``            tenants this instance runs, by state
``wamgr_connects_total``            links that reached ``connected``
``wamgr_closes_total{reason}``      links closed, by close reason (``requested`` included)
``wamgr_backoff_attempts_total``    reconnects made after a backoff delay
``wamgr_lease_renewals_total{result}`` renewal statements (``ok`` / ``failed``)
``wamgr_lease_renewal_seconds``     how long a renewal statement took
``wamgr_webhook_queue_depth``       webhook deliveries waiting (this instance's endpoints)
``wamgr_webhook_deliveries_total{endpoint}`` deliveries accepted by the endpoint
``wamgr_webhook_failures_total{endpoint}``   failed delivery attempts
``wamgr_outbound_queued``           outbound messages queued, all tenants (as last counted)
``wamgr_outbound_oldest_queued_seconds``  age of the oldest queued outbound message
``wamgr_outbound_messages_total{outcome}``  outbound messages that reached ``sent``,
                                    ``failed``, ``expired``, ``unknown`` (or went back to
                                    ``requeued``) on this instance
=================================== ======================================================
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator

from loguru import logger
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from wamgr.errors import WamgrError
from wamgr.status import TenantState

#: Content type of the text exposition format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Renewal latency buckets, in seconds.
_RENEWAL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _TenantStates(Collector):
    """``wamgr_tenants{state}``: counted when scraped, every state present (0 included)."""

    def __init__(self, states: Callable[[], Iterable[TenantState]]):
        self._states = states

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "wamgr_tenants", "Tenants this instance runs, by state", labels=["state"]
        )

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "wamgr_tenants", "Tenants this instance runs, by state", labels=["state"]
        )
        try:
            counts = Tally(self._states())
        except WamgrError as exc:
            logger.warning("metrics: tenant states unavailable: {}", exc.format_message())
            counts = Tally()
        for state in TenantState:
            family.add_metric([state.value], counts.get(state, 0))
        yield family


class Metrics:
    """The metrics of one manager; ``render()`` gives the Prometheus text format."""

    def __init__(self, states: Callable[[], Iterable[TenantState]] = tuple):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        r.register(_TenantStates(states))
        self._connects = Counter("wamgr_connects", "Links that reached connected", registry=r)
        self._closes = Counter(
            "wamgr_closes", "Links closed, by close reason", ["reason"], registry=r
        )
        self._backoff = Counter(
            "wamgr_backoff_attempts", "Reconnects made after a backoff delay", registry=r
        )
        self._renewals = Counter(
            "wamgr_lease_renewals", "Lease renewal statements, by result", ["result"], registry=r
        )
        self._renewal_seconds = Histogram(
            "wamgr_lease_renewal_seconds",
            "Duration of lease renewal statements",
            buckets=_RENEWAL_BUCKETS,
            registry=r,
        )
        self._queue = Gauge(
            "wamgr_webhook_queue_depth", "Webhook deliveries waiting to be sent", registry=r
        )
        self._delivered = Counter(
            "wamgr_webhook_deliveries",
            "Webhook deliveries the endpoint accepted",
            ["endpoint"],
            registry=r,
        )
        self._failed = Counter(
            "wamgr_webhook_failures", "Failed webhook delivery attempts", ["endpoint"], registry=r
        )
        self._outbound_queued = Gauge(
            "wamgr_outbound_queued", "Outbound messages queued (all tenants)", registry=r
        )
        self._outbound_oldest = Gauge(
            "wamgr_outbound_oldest_queued_seconds",
            "Age of the oldest queued outbound message",
            registry=r,
        )
        self._outbound = Counter(
            "wamgr_outbound_messages",
            "Outbound messages by the state they reached here",
            ["outcome"],
            registry=r,
        )
        for result in ("ok", "failed"):
            self._renewals.labels(result)
        for outcome in ("sent", "failed", "expired", "unknown", "requeued"):
            self._outbound.labels(outcome)

    def render(self) -> bytes:
        """Every metric in the Prometheus text exposition format."""
        return generate_latest(self.registry)

    # --- hooks --------------------------------------------------------------------------

    def link_connected(self) -> None:
        """A link reached ``connected``."""
        self._connects.inc()

    def link_closed(self, reason: str) -> None:
        """A link closed for ``reason`` (a CloseReason value)."""
        self._closes.labels(reason).inc()

    def backoff_attempt(self) -> None:
        """A reconnect scheduled after a backoff delay is being made."""
        self._backoff.inc()

    def lease_renewal(self, seconds: float, ok: bool) -> None:
        """A renewal statement took ``seconds`` and succeeded (or not)."""
        self._renewals.labels("ok" if ok else "failed").inc()
        self._renewal_seconds.observe(seconds)

    def webhook_queue_depth(self, count: int) -> None:
        """``count`` webhook deliveries wait."""
        self._queue.set(count)

    def webhook_delivered(self, endpoint: str) -> None:
        """An endpoint accepted a delivery."""
        self._delivered.labels(endpoint).inc()

    def webhook_failed(self, endpoint: str) -> None:
        """A delivery attempt failed."""
        self._failed.labels(endpoint).inc()

    def outbound_depth(self, count: int, oldest_age_s: float) -> None:
        """``count`` outbound messages are queued; the oldest for ``oldest_age_s`` seconds."""
        self._outbound_queued.set(count)
        self._outbound_oldest.set(oldest_age_s)

    def outbound_outcome(self, outcome: str, count: int = 1) -> None:
        """``count`` outbound messages reached ``outcome`` (a state, or ``requeued``)."""
        self._outbound.labels(outcome).inc(count)
