"""TenantActor on its own: fake transport, lease store and writer; recording actors around it.

Scenarios through the manager and the simulator are in test_tenant_scenarios.py; these pin
the actor's own rules: at most one link, what follows a close (the ranked AfterClose), no link
after Shutdown, grants that come too late, and the keeper's fence closing a link while the
actor is busy.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from wamgr import ManagerStopped, TenantState
from wamgr.actors import messages as m
from wamgr.actors.leases import LeaseGranted, LeaseLost
from wamgr.store.leases import Lease
from wamgr.transport.base import CloseReason, Connected, MessageReceived

CONNECTED = TenantState.CONNECTED


def connected(rig) -> None:
    """Connect t1 and let its fake link report connected."""
    rig.ask(m.Connect())
    rig.link.emit(Connected(rig.link.generation, "15550000001@s.whatsapp.net"))
    assert rig.status().state is CONNECTED


# --- one link ------------------------------------------------------------------------------


def test_connect_opens_one_link_and_connect_again_opens_nothing(rig):
    assert rig.ask(m.Connect()).state is TenantState.CONNECTING
    for _ in range(3):
        rig.ask(m.Connect())
    assert len(rig.transport.links) == 1 and rig.link.opened
    granted = rig.keeper.wait_for(LeaseGranted)
    assert [g.token for g in granted] == [1]


def test_reconnect_opens_the_new_link_only_after_the_old_one_closed(rig):
    rig.transport.defer_closes = True
    connected(rig)
    first = rig.link
    rig.ask(m.Reconnect())
    assert len(rig.transport.links) == 1  # the old one is still closing
    first.finish_close()
    rig.status()
    assert len(rig.transport.links) == 2 and rig.link.opened


# --- after close: one ranked request -------------------------------------------------------


def test_remove_while_a_reconnect_is_closing_stops(rig):
    rig.transport.defer_closes = True
    connected(rig)
    rig.ask(m.Reconnect())
    done = threading.Event()
    rig.ask(m.Remove(False, done))
    rig.link.finish_close()
    assert done.wait(5)
    assert rig.status().state is TenantState.STOPPED
    assert len(rig.transport.links) == 1
    assert rig.leases.released == [("t1", 1)]


def test_connect_while_a_remove_is_closing_reopens(rig):
    rig.transport.defer_closes = True
    connected(rig)
    rig.ask(m.Remove(False, threading.Event()))
    rig.ask(m.Connect())
    rig.link.finish_close()
    rig.status()
    assert len(rig.transport.links) == 2 and rig.link.opened


def test_clear_auth_stands_when_the_process_stops_meanwhile(rig):
    rig.transport.defer_closes = True
    connected(rig)
    cleared, stopped = threading.Event(), threading.Event()
    rig.ask(m.ClearAuth(cleared))
    rig.tell(m.Shutdown(stopped))
    rig.link.finish_close()
    assert cleared.wait(5) and stopped.wait(5)
    status = rig.status()
    assert status.state is TenantState.LOGGED_OUT and status.jid is None
    assert rig.transport.cleared == [("t1", "15550000001@s.whatsapp.net")]


def test_remove_with_logout_asked_while_closing_still_clears_the_credentials(rig):
    rig.transport.defer_closes = True
    connected(rig)
    rig.ask(m.Reconnect())
    done = threading.Event()
    rig.ask(m.Remove(True, done))
    rig.link.finish_close()
    assert done.wait(5)
    assert rig.status().jid is None


# --- Shutdown is final (issue #12, defect 1) ----------------------------------------------


def test_after_shutdown_no_command_opens_a_link(rig):
    connected(rig)
    done = threading.Event()
    rig.tell(m.Shutdown(done))
    assert done.wait(5)
    with pytest.raises(ManagerStopped):
        rig.ask(m.Connect())
    with pytest.raises(ManagerStopped):
        rig.ask(m.Reconnect())
    rig.tell(m.RetryDue(rig.link.generation))
    assert rig.status().state is TenantState.STOPPED
    assert len(rig.transport.links) == 1


def test_a_connect_queued_behind_shutdown_opens_nothing(rig):
    rig.transport.defer_closes = True
    connected(rig)
    done = threading.Event()
    rig.tell(m.Shutdown(done))
    with pytest.raises(ManagerStopped):
        rig.ask(m.Connect())  # the link is still closing
    rig.link.finish_close()
    assert done.wait(5)
    assert rig.status().state is TenantState.STOPPED
    assert len(rig.transport.links) == 1
    assert rig.leases.released == []  # the manager releases all closed tenants' leases at once


# --- late grants (issue #12, defect 4) -----------------------------------------------------


def test_a_grant_answered_after_renew_deadline_opens_no_link(rig):
    rig.leases.answer_after_s = rig.config.renew_deadline_s
    status = rig.ask(m.Connect())
    assert status.state is TenantState.STANDBY
    assert "too late" in status.last_error
    assert rig.transport.links == []
    assert rig.keeper.of(LeaseGranted) == []  # nobody renews it: it expires by itself


def test_a_grant_answered_just_in_time_is_used_and_dated_from_its_sending(rig):
    rig.leases.answer_after_s = rig.config.renew_deadline_s - 0.1
    sent_at = rig.clock.monotonic()
    assert rig.ask(m.Connect()).state is TenantState.CONNECTING
    assert rig.keeper.wait_for(LeaseGranted)[0].sent_at == sent_at  # the keeper's deadline
    assert rig.link.opened


def test_a_lease_held_elsewhere_is_standby_naming_the_holder(rig):
    rig.leases.held_by = "other"
    status = rig.ask(m.Connect())
    assert (status.state, status.owner) == (TenantState.STANDBY, "other")
    assert rig.transport.links == []


# --- the keeper's fence (issue #12, defect 2) ----------------------------------------------


def test_the_fence_closes_the_link_while_the_tenant_is_busy(rig):
    connected(rig)
    grant = rig.keeper.wait_for(LeaseGranted)[0]
    busy, free = threading.Event(), threading.Event()

    def slow_inbound(tenant_id, message) -> None:  # e.g. a write to a stalled database
        busy.set()
        free.wait(10)

    rig.on_inbound = slow_inbound
    rig.link.emit(MessageReceived(rig.link.generation, "m1", "15550002222@s.whatsapp.net", "hi"))
    assert busy.wait(5)
    grant.fence.trip("not renewed within 20 s")  # what the keeper does, on its own thread
    assert rig.link.closed  # closed now, not after the actor is free again
    assert rig.link.closes[0][0] is False  # no logout
    rig.tell(LeaseLost(grant.token))
    free.set()
    report = rig.supervisor.wait_for(m.LinkClosed)[0]
    assert report.reason is CloseReason.LEASE_LOST
    assert rig.status().state is not CONNECTED


def test_a_fence_tripped_before_the_link_opens_keeps_it_closed(rig):
    connected(rig)
    grant = rig.keeper.wait_for(LeaseGranted)[0]
    grant.fence.trip("lost")
    assert not grant.fence.arm(rig.link)


# --- 440 conflict: who replaced us ---------------------------------------------------------


def test_replaced_soon_after_taking_over_from_another_instance_reconnects(rig):
    rig.leases.previous_owner = "predecessor"
    connected(rig)
    rig.clock.advance(rig.config.lease_ttl_s - 1)
    rig.link.finish_close(CloseReason.REPLACED, "stream replaced (440 conflict)")
    report = rig.supervisor.wait_for(m.LinkClosed)[0]
    assert report.reason is CloseReason.NETWORK  # not a rogue: backoff and reconnect
    assert "previous holder" in report.detail


def test_replaced_while_holding_a_lease_long_held_is_a_rogue(rig):
    rig.leases.previous_owner = "predecessor"
    connected(rig)
    rig.clock.advance(rig.config.lease_ttl_s + 1)
    rig.link.finish_close(CloseReason.REPLACED, "stream replaced (440 conflict)")
    assert rig.supervisor.wait_for(m.LinkClosed)[0].reason is CloseReason.REPLACED


def test_replaced_on_a_fresh_lease_is_a_rogue(rig):
    connected(rig)  # no previous owner: nobody else can have a socket
    rig.link.finish_close(CloseReason.REPLACED, "stream replaced (440 conflict)")
    assert rig.supervisor.wait_for(m.LinkClosed)[0].reason is CloseReason.REPLACED


def test_replaced_by_the_leases_new_holder_is_lease_lost(rig):
    connected(rig)
    rig.leases.current["t1"] = Lease("t1", "successor", 77, datetime.now(UTC))
    rig.link.finish_close(CloseReason.REPLACED, "stream replaced (440 conflict)")
    assert rig.supervisor.wait_for(m.LinkClosed)[0].reason is CloseReason.LEASE_LOST


# --- undecryptable messages ----------------------------------------------------------------


def test_too_many_undecryptable_messages_close_for_corrupted_keys(make_rig):
    from wamgr.transport.base import Undecryptable

    rig = make_rig(undecryptable_limit=2)
    connected(rig)
    for i in range(3):
        rig.link.emit(Undecryptable(rig.link.generation, f"m{i}", "15550002222@s.whatsapp.net"))
    report = rig.supervisor.wait_for(m.LinkClosed)[0]
    assert report.reason is CloseReason.CORRUPTED_KEYS


def test_shutdown_that_asks_to_stop_ends_the_actor_only_once_the_link_closed(rig):
    rig.transport.defer_closes = True
    connected(rig)
    done = threading.Event()
    rig.tell(m.Shutdown(done, stop=True))
    assert rig.status().state is not TenantState.STOPPED  # still closing: still answers
    rig.link.finish_close()
    assert done.wait(5)
    assert rig.tenant.actor_stopped.wait(5)
    assert rig.transport.links[-1] is rig.link and len(rig.transport.links) == 1
