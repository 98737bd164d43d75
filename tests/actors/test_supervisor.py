"""SupervisorActor on its own: a virtual clock, a real scheduler, a recording actor as tenant.

The supervisor turns a LinkClosed into an ApplyDecision told to the tenant and, when the
policy says to reconnect, a RetryDue that the scheduler tells at the delay. It never reaches
for a link: the only messages the tenant ever gets are those two, whatever the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from wamgr.actors import messages as m
from wamgr.actors.supervisor import SupervisorActor
from wamgr.clock import VirtualClock
from wamgr.config import Config
from wamgr.status import TenantState
from wamgr.transport.base import CloseReason
from wamgr.workers.scheduler import Scheduler

from .conftest import Inbox

WAIT_S = 5.0


#: How long before its due time a retry is checked not to have come yet.
EARLY_S = 0.5


class _Settle:
    """A message no actor handles: asking it returns once the mailbox ahead of it is done."""


class _Probe:
    """Told to a recording tenant by a task scheduled after the clock moved (see drain)."""


class Rig:
    """A supervisor on a virtual clock, with a scheduler, and recording tenants."""

    def __init__(self, **config: Any) -> None:
        self.clock = VirtualClock()
        self.scheduler = Scheduler(self.clock)
        self.scheduler.start()
        self.supervisor = SupervisorActor.start(
            Config(transport="sim", **config), self.clock, self.scheduler
        )
        self.tenants: dict[str, Inbox] = {}

    def tenant(self, tenant_id: str = "t1") -> Inbox:
        """The recording actor standing in for ``tenant_id``."""
        if tenant_id not in self.tenants:
            self.tenants[tenant_id] = Inbox()
        return self.tenants[tenant_id]

    def close(
        self,
        reason: CloseReason,
        tenant_id: str = "t1",
        *,
        generation: int = 1,
        attempt: int = 0,
        uptime_s: float = 0.0,
        ban_expires_in_s: float | None = None,
    ) -> m.ApplyDecision:
        """Tell the supervisor that the tenant's link closed; returns the decision it told."""
        inbox = self.tenant(tenant_id)
        before = len(inbox.of(m.ApplyDecision))
        self.supervisor.tell(
            m.LinkClosed(
                tenant_id,
                inbox.ref,
                generation,
                reason,
                "detail",
                uptime_s,
                attempt,
                ban_expires_in_s,
            )
        )
        told = inbox.wait_for(m.ApplyDecision, before + 1, WAIT_S)[-1]
        self.settle()  # the retry is scheduled just after the decision is told
        return told

    def settle(self) -> None:
        """Return once the supervisor has handled every message told before (it answers a
        message it does not handle with None, after the ones queued ahead of it)."""
        self.supervisor.ask(_Settle(), timeout=WAIT_S)

    def retries(self, tenant_id: str = "t1") -> list[m.RetryDue]:
        return self.tenant(tenant_id).of(m.RetryDue)

    def stop(self) -> None:
        self.supervisor.stop()
        assert self.scheduler.stop(WAIT_S)
        for inbox in self.tenants.values():
            if inbox.ref.is_alive():
                inbox.ref.stop()


@pytest.fixture
def make_rig() -> Iterator[Callable[..., Rig]]:
    made: list[Rig] = []

    def make(**config: Any) -> Rig:
        made.append(Rig(**config))
        return made[-1]

    yield make
    for rig in made:
        rig.stop()


@pytest.fixture
def rig(make_rig) -> Rig:
    return make_rig()


def drain(rig: Rig, tenant_id: str = "t1") -> None:
    """Return once every task due by now has run and the tenant got what those told it.

    A task scheduled now runs after every task due earlier (the heap is ordered by due time,
    then by order of scheduling), and what one thread tells an actor arrives in order.
    """
    inbox = rig.tenant(tenant_id)
    count = len(inbox.of(_Probe)) + 1
    rig.scheduler.schedule(0.0, lambda: inbox.ref.tell(_Probe()))
    inbox.wait_for(_Probe, count, WAIT_S)


def retry_due_after(rig: Rig, delay: float, tenant_id: str = "t1") -> None:
    """Assert that the tenant's RetryDue comes at ``delay`` from now, not a step before."""
    rig.clock.advance(delay - EARLY_S)
    drain(rig, tenant_id)
    assert rig.retries(tenant_id) == [], "RetryDue came before its delay"
    rig.clock.advance(EARLY_S)
    rig.tenant(tenant_id).wait_for(m.RetryDue, 1, WAIT_S)


# --- a reconnect, at the backoff delay --------------------------------------------------


def test_a_network_drop_is_told_as_backoff_and_retried_after_3_s(rig):
    now = rig.clock.time()
    told = rig.close(CloseReason.NETWORK, generation=7)
    assert told.generation == 7
    assert told.decision.state is TenantState.BACKOFF
    assert (told.decision.attempt, told.decision.reconnect_after_s) == (1, 3.0)
    assert told.retry_at == now + 3.0
    retry_due_after(rig, 3.0)
    assert rig.retries() == [m.RetryDue(7)]


@pytest.mark.parametrize(
    ("attempt", "next_attempt", "delay"),
    [(1, 2, 5.0), (5, 6, 10.0), (15, 16, 30.0), (40, 41, 30.0)],
)
def test_a_flapping_link_is_retried_at_the_escalating_delay(rig, attempt, next_attempt, delay):
    told = rig.close(CloseReason.DIAL_FAILED, attempt=attempt, uptime_s=1.0)
    assert (told.decision.attempt, told.decision.reconnect_after_s) == (next_attempt, delay)
    retry_due_after(rig, delay)


def test_a_drop_after_a_stable_link_starts_again_at_3_s(make_rig):
    rig = make_rig(stable_after_s=60.0)
    told = rig.close(CloseReason.NETWORK, attempt=9, uptime_s=60.0)
    assert (told.decision.attempt, told.decision.reconnect_after_s) == (1, 3.0)
    retry_due_after(rig, 3.0)


def test_a_temporary_ban_is_retried_when_it_expires(rig):
    told = rig.close(CloseReason.TEMPORARY_BAN, ban_expires_in_s=120.0)
    assert told.decision.state is TenantState.BANNED
    retry_due_after(rig, 120.0)


def test_the_decision_is_told_before_the_retry_even_with_no_delay(make_rig):
    rig = make_rig(clear_auth_on_corruption=True)
    rig.close(CloseReason.CORRUPTED_KEYS)  # re-pair at once: delay 0
    inbox = rig.tenant()
    inbox.wait_for(m.RetryDue, 1, WAIT_S)
    assert [type(message) for message in inbox.messages] == [m.ApplyDecision, m.RetryDue]


# --- parked: no retry ever --------------------------------------------------------------

PARKED = {
    CloseReason.REPLACED: TenantState.CONFLICT,
    CloseReason.LOGGED_OUT: TenantState.LOGGED_OUT,
    CloseReason.MAIN_DEVICE_GONE: TenantState.LOGGED_OUT,
    CloseReason.UNKNOWN_LOGOUT: TenantState.LOGGED_OUT,
    CloseReason.CLIENT_OUTDATED: TenantState.FAILED,
    CloseReason.BAD_USER_AGENT: TenantState.FAILED,
    CloseReason.CONNECT_FAILURE: TenantState.FAILED,
    CloseReason.CORRUPTED_KEYS: TenantState.FAILED,
    CloseReason.PAIRING_TIMEOUT: TenantState.LOGGED_OUT,
    CloseReason.LEASE_LOST: TenantState.STANDBY,
}


@pytest.mark.parametrize("reason", list(PARKED), ids=str)
def test_a_parked_reason_is_told_and_never_retried(rig, reason):
    told = rig.close(reason)
    assert told.decision.state is PARKED[reason]
    assert told.decision.reconnect_after_s is None and told.retry_at is None
    assert rig.scheduler.pending() == 0
    rig.clock.advance(86_400.0)
    drain(rig)
    assert rig.retries() == []


@pytest.mark.parametrize("reason", [r for r in CloseReason if r is not CloseReason.REQUESTED])
def test_the_tenant_is_only_ever_told_decisions_and_retries_never_a_logout(rig, reason):
    """The link that closed is gone: nothing the supervisor sends can log it out."""
    rig.close(reason, ban_expires_in_s=1.0)
    rig.clock.advance(86_400.0)
    drain(rig)
    kinds = {type(message) for message in rig.tenant().messages}
    assert kinds <= {m.ApplyDecision, m.RetryDue, _Probe}, kinds


# --- spreading reconnects -----------------------------------------------------------------


def test_the_connect_rate_spreads_simultaneous_retries(make_rig):
    rig = make_rig(connect_rate=2.0)
    delays = [
        rig.close(CloseReason.NETWORK, tenant).retry_at - rig.clock.time()
        for tenant in ("a", "b", "c")
    ]
    assert delays == [3.0, 3.5, 4.0]
    rig.clock.advance(3.0)
    rig.tenant("a").wait_for(m.RetryDue, 1, WAIT_S)
    drain(rig, "b")
    drain(rig, "c")
    assert rig.retries("b") == [] and rig.retries("c") == []
    rig.clock.advance(0.5)
    rig.tenant("b").wait_for(m.RetryDue, 1, WAIT_S)
    drain(rig, "c")
    assert rig.retries("c") == []


def test_jitter_spreads_the_delays_within_their_fraction(make_rig):
    rig = make_rig(backoff_jitter=0.5)
    delays = [
        rig.close(CloseReason.NETWORK, f"t{i}").retry_at - rig.clock.time() for i in range(20)
    ]
    assert all(1.5 <= delay <= 4.5 for delay in delays), delays
    assert len(set(delays)) > 1, "every delay was the same: no jitter"


def test_without_jitter_every_first_drop_waits_exactly_3_s(rig):
    delays = {rig.close(CloseReason.NETWORK, f"t{i}").retry_at - rig.clock.time() for i in range(5)}
    assert delays == {3.0}


# --- what goes wrong around it -------------------------------------------------------------


def test_a_retry_for_a_tenant_that_stopped_meanwhile_is_dropped_quietly(rig, logs):
    rig.close(CloseReason.NETWORK, "gone")
    rig.close(CloseReason.NETWORK, "kept", attempt=1)  # 5 s
    rig.tenant("gone").ref.stop()
    rig.clock.advance(5.0)
    rig.tenant("kept").wait_for(m.RetryDue, 1, WAIT_S)
    assert not [line for line in logs if line.startswith("ERROR")], logs


def test_a_requested_close_is_refused_and_the_supervisor_goes_on(rig):
    """A close wamgr asked for never reaches the supervisor; if it did, the policy refuses
    it, the failure is logged, and the next LinkClosed is handled as usual."""
    rig.supervisor.tell(m.LinkClosed("t1", rig.tenant().ref, 1, CloseReason.REQUESTED, "", 0.0, 0))
    rig.settle()
    assert rig.tenant().messages == []
    assert rig.close(CloseReason.NETWORK).decision.state is TenantState.BACKOFF
