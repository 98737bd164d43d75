"""Webhook delivery: a named thread that posts outbox rows, signed, with retries.

Each row (one event for one endpoint, see :mod:`wamgr.store.outbox`) is claimed for a while,
posted with the Standard Webhooks headers and settled:

Rows for the instance's global endpoints are signed with the global secret; rows for a
tenant's own endpoints (every instance posts those) with that endpoint's secret, or the
global one when it has none.

- 2xx: delivered.
- 410 Gone: the endpoint is disabled (no more events are written or sent to it) and its
  pending rows are given up; ``wamgr webhooks enable URL`` turns it back on.
- anything else, or no answer: retried after :func:`retry_delay` (growing, with jitter), or
  after the ``Retry-After`` the endpoint asked for if that is longer; given up after
  ``max_attempts``: the row is kept as *dead* (``wamgr webhooks dead``) and can be sent again
  with its ``webhook-id`` (``wamgr webhooks retry``).

A worker that dies mid-delivery leaves its claim to expire, and the row is posted again by
the next worker, with the same ``webhook-id``: an event is never lost, and a receiver that
remembers ids never handles one twice. Several instances configured with the same endpoint
share its rows (claims skip each other's).
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
from loguru import logger

from wamgr.errors import ConfigError, WamgrError
from wamgr.store.outbox import Outbox, OutboxRow
from wamgr.tls import default_tls
from wamgr.webhooks.signing import decode_secret, sign
from wamgr.workers.base import AT_ONCE, Worker

if TYPE_CHECKING:
    from wamgr.metrics import Metrics

#: Deliveries claimed per pass.
BATCH = 10
#: Longest Retry-After honoured, in seconds (a day); a longer one is cut to this.
RETRY_AFTER_MAX_S = 86_400.0
#: Seconds between two looks at the outbox when nothing wakes the worker.
POLL_S = 5.0
#: Delivered and given-up rows are deleted after this many seconds (7 days).
RETENTION_S = 7 * 86_400.0
#: Fraction by which retry delays are spread (±).
RETRY_JITTER = 0.2
USER_AGENT = "wamgr-webhooks/1"


def retry_delay(
    attempt: int, *, base_s: float, max_s: float, jitter: float = RETRY_JITTER, rnd: float = 0.5
) -> float:
    """Seconds before retrying after failed attempt number ``attempt`` (1 = the first).

    ``base_s`` doubling each attempt, at most ``max_s``, spread by ±``jitter`` (``rnd`` is a
    random number in [0, 1); 0.5 means no spread).
    """
    delay = min(max_s, base_s * 2 ** max(0, attempt - 1))
    return max(0.0, delay * (1.0 + jitter * (2.0 * rnd - 1.0)))


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), RETRY_AFTER_MAX_S)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    wait = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(0.0, wait), RETRY_AFTER_MAX_S)


def shown_url(url: str) -> str:
    """``url`` without credentials, query or fragment (they may hold tokens): for logs and
    metric labels."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


class WebhookSender(Worker):
    """Posts the outbox rows of ``endpoints`` until stopped; one per manager with webhooks."""

    what = "webhook delivery pass"

    def __init__(
        self,
        outbox: Outbox,
        worker_id: str,
        endpoints: Sequence[str],
        key: bytes | None,
        *,
        timeout_s: float = 10.0,
        retry_base_s: float = 5.0,
        retry_max_s: float = 3600.0,
        max_attempts: int = 20,
        metrics: Metrics | None = None,
        poll_s: float = POLL_S,
        name: str = "wamgr-webhooks",
    ):
        super().__init__(name)
        self._outbox = outbox
        self._worker = worker_id
        self._endpoints = list(endpoints)
        self._key = key
        self._timeout_s = timeout_s
        self._retry_base_s = retry_base_s
        self._retry_max_s = retry_max_s
        self._max_attempts = max_attempts
        self._metrics = metrics
        self._poll_s = poll_s
        self._random = random.Random()
        self._passes = 0
        self._client = httpx.Client(
            timeout=timeout_s,
            follow_redirects=False,
            headers={"user-agent": USER_AGENT},
            verify=default_tls(),
        )

    def on_start(self) -> None:
        """Warn about disabled endpoints; then rows left from before a restart go first."""
        try:
            for url, (at, reason) in self._outbox.disabled_endpoints().items():
                if url in self._endpoints:
                    logger.warning(
                        "webhook endpoint {} is disabled since {} ({}); no events go to it "
                        "until `wamgr webhooks enable URL`",
                        shown_url(url),
                        at,
                        reason,
                    )
        except WamgrError as exc:
            logger.warning("could not read disabled webhook endpoints: {}", exc.format_message())

    def stop(self, timeout: float) -> bool:
        """End the thread after the delivery under way (waiting at most ``timeout`` s), then
        close the HTTP client; returns whether the thread ended."""
        ended = super().stop(timeout)
        if ended:
            self._client.close()
        return ended

    def run_once(self) -> int:
        """Claim due rows and post them; returns how many were attempted."""
        claim_s = self._timeout_s * (BATCH + 1)
        rows = self._outbox.claim_due(self._worker, self._endpoints, BATCH, claim_s)
        disabled: set[str] = set()
        for index, row in enumerate(rows):
            if self.stopping:
                self._outbox.unclaim([r.id for r in rows[index:]])
                return index
            if row.endpoint not in disabled and not self._deliver(row):
                disabled.add(row.endpoint)
        return len(rows)

    # --- internals ----------------------------------------------------------------------

    def iterate(self) -> float:
        """A delivery pass; the next one at once if this one sent something, else when the
        next row is due (at most ``poll_s`` on; :meth:`wake` ends the wait early)."""
        attempted = self.run_once()
        count, due = self._outbox.pending(self._endpoints)
        if self._metrics is not None:
            self._metrics.webhook_queue_depth(count)
        if self._passes % 1000 == 0:
            self._outbox.sweep(RETENTION_S)
        self._passes += 1
        if attempted:
            return AT_ONCE
        return self.after(self._poll_s if due is None else max(0.01, min(due, self._poll_s)))

    def on_failure(self, exc: Exception) -> float:
        """Log the failed pass (the base class's way); the next one in ``poll_s``."""
        super().on_failure(exc)
        return self.after(self._poll_s)

    def _key_of(self, row: OutboxRow) -> bytes | None:
        """The key that signs ``row``: its tenant endpoint's own secret, else the global one."""
        if row.secret:
            try:
                return decode_secret(row.secret, "the tenant webhook's secret")
            except ConfigError:
                return None  # validated when set; a row edited by hand is given up
        return self._key

    def _deliver(self, row: OutboxRow) -> bool:
        """Post one row and settle it; False if the endpoint is gone (410) and was disabled."""
        attempt = row.attempts + 1
        shown = shown_url(row.endpoint)
        key = self._key_of(row)
        if key is None:
            error = (
                "no secret to sign with: give the tenant's webhook a secret, or set "
                "WAMGR_WEBHOOK_SECRET"
            )
            self._outbox.failed(row.id, None, error, None)
            logger.warning("gave up delivering {} to {}: {}", row.webhook_id, shown, error)
            return True
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": row.webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(key, row.webhook_id, timestamp, row.body),
        }
        status: int | None = None
        retry_after: float | None = None
        try:
            response = self._client.post(row.endpoint, content=row.body.encode(), headers=headers)
            status = response.status_code
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            error = f"HTTP {status}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        if status is not None and 200 <= status < 300:
            self._outbox.delivered(row.id, status)
            if self._metrics is not None:
                self._metrics.webhook_delivered(shown)
            logger.debug("delivered {} {} to {}", row.event_type, row.webhook_id, shown)
            return True
        if self._metrics is not None:
            self._metrics.webhook_failed(shown)
        if status == 410:
            given_up = self._outbox.disable_endpoint(row.endpoint, "410 Gone")
            logger.warning(
                "webhook endpoint {} answered 410 Gone: disabled, {} pending events dropped; "
                "`wamgr webhooks enable URL` turns it back on",
                shown,
                given_up,
            )
            return False
        if attempt >= self._max_attempts:
            self._outbox.failed(row.id, status, error, None)
            logger.warning(
                "gave up delivering {} {} to {} after {} attempts ({})",
                row.event_type,
                row.webhook_id,
                shown,
                attempt,
                error,
            )
            return True
        delay = retry_delay(
            attempt,
            base_s=self._retry_base_s,
            max_s=self._retry_max_s,
            rnd=self._random.random(),
        )
        if retry_after is not None:
            delay = max(delay, retry_after)
        self._outbox.failed(row.id, status, error, delay)
        logger.info(
            "webhook {} to {} failed ({}); attempt {} in {:.2f} s",
            row.webhook_id,
            shown,
            error,
            attempt + 1,
            delay,
        )
        return True
