"""The lease renewer: runs the LeaseKeeper's renewals off the keeper actor's thread.

The keeper (an actor, :mod:`wamgr.actors.leases`) hands the tokens to renew to
:meth:`LeaseRenewer.renew` and goes on; the renewer extends them all in ONE statement and
reports the outcome through ``report``, a callback the keeper gives it (it tells the keeper a
message), so a hanging database never stalls the actor. The moment each renewal was *sent*
is measured on the keeper's clock: a lease is good until ``renew_deadline`` after it. The same
statement keeps this process's instance row alive (see :mod:`wamgr.store.instances`), so the
keeper asks for a renewal every interval even when it holds no lease.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from dataclasses import dataclass

from loguru import logger

from wamgr.clock import Clock
from wamgr.errors import WamgrError
from wamgr.store.leases import LeaseStore
from wamgr.workers.base import Worker


@dataclass(frozen=True, slots=True)
class Renewal:
    """The outcome of one renewal sent at ``sent_at`` (the clock's monotonic time).

    ``renewed`` are the tenants whose lease was extended (a tenant of ``tokens`` missing
    from it lost its lease), or ``error`` says why none was; ``latency_s`` is real time.
    ``instance_held`` is False when the instance id is no longer this process's (every lease
    is lost then); with an ``error`` it is unknown, and True.
    """

    sent_at: float
    tokens: dict[str, int]
    renewed: frozenset[str]
    error: str | None
    latency_s: float
    instance_held: bool = True


class LeaseRenewer(Worker):
    """One named worker that renews the leases it is handed, one renewal at a time."""

    what = "lease renewal"

    def __init__(
        self,
        leases: LeaseStore,
        owner: str,
        *,
        ttl_s: float,
        clock: Clock,
        report: Callable[[Renewal], None],
        name: str = "wamgr-lease-renewer",
    ):
        super().__init__(name)
        self._leases = leases
        self._owner = owner
        self._ttl_s = ttl_s
        self._clock = clock
        self._report = report
        self._requests: queue.SimpleQueue[dict[str, int]] = queue.SimpleQueue()

    def renew(self, tokens: dict[str, int]) -> None:
        """Renew the leases of ``tokens`` (tenant -> token) soon; never blocks.

        The outcome goes to ``report``. Requests made after :meth:`stop` are dropped.
        """
        self._requests.put(tokens)
        self.wake()

    def iterate(self) -> None:
        """Run every renewal asked for, in order; then wait for the next :meth:`renew`."""
        while not self.stopping:
            try:
                tokens = self._requests.get_nowait()
            except queue.Empty:
                return
            self._report(self._renew(tokens))

    def _renew(self, tokens: dict[str, int]) -> Renewal:
        sent_at = self._clock.monotonic()
        started = time.perf_counter()  # latency is real time, whatever the clock
        error: str | None = None
        renewed: frozenset[str] = frozenset()
        instance_held = True
        try:
            # bounded by the session's statement timeout (store.db.SessionLimits)
            outcome = self._leases.renew(self._owner, tokens, self._ttl_s)
            renewed, instance_held = outcome.tenants, outcome.instance_held
        except WamgrError as exc:
            error = exc.format_message()
        except Exception as exc:  # a bug must not stop renewals silently
            logger.exception("lease renewal crashed")
            error = repr(exc)
        latency_s = time.perf_counter() - started
        return Renewal(sent_at, tokens, renewed, error, latency_s, instance_held)
