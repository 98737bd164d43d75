"""SupervisorActor: decides what follows every link that closed on its own.

It applies :func:`wamgr.policy.decide` and, when the decision is to reconnect, schedules a
``RetryDue`` for the tenant on the scheduler. It never touches a link: a link that reported
closed is gone, so nothing here can log it out.
"""

from __future__ import annotations

import contextlib
import random
from functools import partial

import pykka
from loguru import logger

from wamgr import policy
from wamgr.actors.base import DispatchingActor
from wamgr.actors.messages import ApplyDecision, LinkClosed, RetryDue
from wamgr.clock import Clock
from wamgr.config import Config
from wamgr.workers.scheduler import Scheduler


class SupervisorActor(DispatchingActor):
    """Turns ``LinkClosed`` into a decision for the tenant and, maybe, a scheduled retry."""

    events = {LinkClosed: "_on_link_closed"}

    def __init__(self, config: Config, clock: Clock, scheduler: Scheduler):
        super().__init__()
        self._config = config
        self._clock = clock
        self._scheduler = scheduler
        self._random = random.Random()
        self._next_slot = 0.0  # monotonic time of the next free reconnect slot

    def _on_link_closed(self, message: LinkClosed) -> None:
        decision = policy.decide(
            message.reason,
            attempt=message.attempt,
            uptime_s=message.uptime_s,
            detail=message.detail,
            ban_expires_in_s=message.ban_expires_in_s,
            stable_after_s=self._config.stable_after_s,
            clear_auth_on_corruption=self._config.clear_auth_on_corruption,
        )
        delay = decision.reconnect_after_s
        if delay is not None and self._config.backoff_jitter and decision.state.value == "backoff":
            delay = policy.jittered(delay, self._config.backoff_jitter, self._random.random())
        if delay is not None:
            delay = self._rate_limited(delay)
        retry_at = self._clock.time() + delay if delay is not None else None
        log = logger.bind(tenant=message.tenant_id)
        if delay is None:
            log.warning("{} -> {} ({})", message.reason, decision.state, decision.error)
        else:
            log.info(
                "{} -> {}, attempt {} in {:.1f} s",
                message.reason,
                decision.state,
                decision.attempt,
                delay,
            )
        # The decision is queued before the timer exists, so the tenant always sees it first.
        message.tenant.tell(ApplyDecision(message.generation, decision, retry_at))
        if delay is not None:
            self._scheduler.schedule(
                delay, partial(_tell_quietly, message.tenant, RetryDue(message.generation))
            )

    def _rate_limited(self, delay: float) -> float:
        """Push ``delay`` back to the next free slot of the process-wide connect rate.

        Thousands of links dropped by one network blip would otherwise all come back in the
        same second; with ``connect_rate`` they come back at most that many per second.
        """
        rate = self._config.connect_rate
        if rate is None:
            return delay
        now = self._clock.monotonic()
        due = max(now + delay, self._next_slot)
        self._next_slot = due + 1.0 / rate
        return due - now


def _tell_quietly(ref: pykka.ActorRef, message: object) -> None:
    # A tenant stopped meanwhile no longer needs its retry.
    with contextlib.suppress(pykka.ActorDeadError):
        ref.tell(message)
