"""Send pacing against bans: how fast each tenant (and the whole process) may send (pure).

WhatsApp bans numbers that send like machines. The outbound sender asks a :class:`Pacer`
before every message; a message that may not go yet stays queued, and the pacer says when it
may (:meth:`Pacer.ready_at`). Nothing here reads a clock or sleeps: every call takes ``now``
(seconds on the caller's clock, :mod:`wamgr.clock`), so tests step time by hand.

- **Per tenant, a token bucket** of ``rate_per_min`` messages a minute holding up to
  ``burst`` messages. It is kept as a GCRA (the "theoretical arrival time"), which is exact
  in floating point for round intervals: at 20 a minute with a burst of 5, five messages go at
  once and then one every 3 s, so 100 messages take (100 - 5) x 3 s = 285 s.
- **Jitter**: after each message, a random extra gap of 0 to ``jitter_s`` seconds before the
  tenant's next one.
- **Typing**: with ``typing`` on, the tenant shows "typing…" before each message for
  :func:`typing_seconds` of its text, then sends it.
- **A process-wide cap** of ``total_per_min`` messages a minute over all tenants, with a
  burst of one second's worth (at least one).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

#: Seconds of "typing…" before any message, however short.
TYPING_BASE_S = 0.5
#: Seconds of "typing…" added per character of the message.
TYPING_PER_CHAR_S = 0.05
#: The longest "typing…" before one message, in seconds.
TYPING_MAX_S = 10.0


def typing_seconds(text: str) -> float:
    """How long to show "typing…" before sending ``text``: grows with its length, bounded."""
    return min(TYPING_MAX_S, TYPING_BASE_S + TYPING_PER_CHAR_S * len(text))


@dataclass(frozen=True, slots=True)
class PacingSettings:
    """How fast messages may go. ``rate_per_min`` None: no per-tenant limit (nor burst)."""

    rate_per_min: float | None = 20.0
    burst: int = 5
    jitter_s: float = 0.0
    typing: bool = False
    total_per_min: float | None = None

    @property
    def off(self) -> bool:
        """Whether nothing is paced (no rate, no jitter, no typing, no cap)."""
        return (
            self.rate_per_min is None
            and not self.jitter_s
            and not self.typing
            and self.total_per_min is None
        )


class Gcra:
    """A token bucket of ``rate_per_min`` tokens a minute holding up to ``burst``, as a GCRA.

    Starts full. :meth:`ready_at` is when the next token is there; :meth:`take` spends one.
    """

    __slots__ = ("_interval", "_tat", "_tolerance")

    def __init__(self, rate_per_min: float, burst: int):
        if rate_per_min <= 0 or burst < 1:
            raise ValueError(f"a bucket needs a rate > 0 and a burst >= 1: {rate_per_min}, {burst}")
        self._interval = 60.0 / rate_per_min
        self._tolerance = (burst - 1) * self._interval
        self._tat: float | None = None  # theoretical arrival time of the next token

    def ready_at(self, now: float) -> float:
        """When a token is available (``now`` or earlier if one is there already)."""
        if self._tat is None:
            return now
        return self._tat - self._tolerance

    def take(self, now: float) -> bool:
        """Spend a token at ``now`` if one is there; returns whether one was."""
        if self.ready_at(now) > now:
            return False
        self._tat = max(self._tat if self._tat is not None else now, now) + self._interval
        return True


@dataclass(slots=True)
class _TenantPace:
    bucket: Gcra | None
    not_before: float = float("-inf")  # the jitter gap after the last message
    typing_id: str | None = None  # the message "typing…" is shown for
    typing_until: float = 0.0


@dataclass
class Pacer:
    """The pacing state of one sender: a bucket per tenant, one for the process, the jitter.

    Not thread-safe: one sender thread owns it. ``rng`` draws the jitter (seeded in tests).
    """

    settings: PacingSettings
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self._tenants: dict[str, _TenantPace] = {}
        self._own: dict[str, tuple[float | None, int | None]] = {}
        total = self.settings.total_per_min
        self._total = Gcra(total, max(1, int(total // 60))) if total is not None else None

    def own_limits(self, tenant_id: str, rate_per_min: float | None, burst: int | None) -> None:
        """The tenant's own ``send_rate`` / ``send_burst`` (None: the defaults); a change
        starts the tenant's bucket afresh."""
        if self._own.get(tenant_id, (None, None)) != (rate_per_min, burst):
            self._own[tenant_id] = (rate_per_min, burst)
            self._tenants.pop(tenant_id, None)

    def _pace(self, tenant_id: str) -> _TenantPace:
        pace = self._tenants.get(tenant_id)
        if pace is None:
            own_rate, own_burst = self._own.get(tenant_id, (None, None))
            rate = own_rate if own_rate is not None else self.settings.rate_per_min
            burst = own_burst if own_burst is not None else self.settings.burst
            bucket = Gcra(rate, burst) if rate is not None else None
            pace = self._tenants[tenant_id] = _TenantPace(bucket)
        return pace

    def ready_at(self, tenant_id: str, now: float) -> float:
        """When the tenant may send its next message (or start typing it), by its own limits
        (``now`` or earlier: it may now)."""
        pace = self._pace(tenant_id)
        at = pace.not_before
        if pace.bucket is not None:
            at = max(at, pace.bucket.ready_at(now))
        return at

    def total_ready_at(self, now: float) -> float:
        """When the process-wide cap lets the next message go."""
        return self._total.ready_at(now) if self._total is not None else now

    def start_typing(self, tenant_id: str, message_id: str, text: str, now: float) -> float:
        """Note that "typing…" shows for ``message_id`` from ``now``; returns when to send it."""
        pace = self._pace(tenant_id)
        pace.typing_id = message_id
        pace.typing_until = now + typing_seconds(text)
        return pace.typing_until

    def typing_done_at(self, tenant_id: str, message_id: str) -> float | None:
        """When the "typing…" shown for ``message_id`` has lasted long enough; None if none
        was shown for it (show it first when typing is on)."""
        pace = self._pace(tenant_id)
        return pace.typing_until if pace.typing_id == message_id else None

    def take(self, tenant_id: str, now: float) -> bool:
        """Spend the tokens of one message at ``now`` (the tenant's and the process's) if both
        are there; returns whether the message may go now."""
        pace = self._pace(tenant_id)
        if self.ready_at(tenant_id, now) > now or self.total_ready_at(now) > now:
            return False
        if pace.bucket is not None:
            pace.bucket.take(now)
        if self._total is not None:
            self._total.take(now)
        return True

    def sent(self, tenant_id: str, now: float) -> None:
        """A message of the tenant went at ``now``: draw the jitter gap before its next one."""
        pace = self._pace(tenant_id)
        pace.typing_id = None
        if self.settings.jitter_s:
            pace.not_before = now + self.rng.uniform(0.0, self.settings.jitter_s)
