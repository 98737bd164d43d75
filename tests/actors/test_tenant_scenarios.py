"""The seed scenarios, on virtual time, through ConnectionManager and the simulator.

Each test counts sockets in the simulated WhatsApp: the promise is one socket per account.
(TenantActor on its own, with fake services, is tests/actors/test_tenant.py.)
"""

from __future__ import annotations

import threading

import pytest

from wamgr import NotConnected, TenantState, UnknownTenant
from wamgr.actors import messages as m
from wamgr.transport.base import Closed, CloseReason, Connected

CONNECTED = TenantState.CONNECTED
BACKOFF = TenantState.BACKOFF


def connected_jid(mgr, tenant="t1") -> str:
    mgr.connect(tenant)
    return mgr.wait_for(tenant, CONNECTED, timeout=5).jid


def settle(mgr, tenant="t1"):
    """Round-trip through the tenant's and the registry's mailboxes (all earlier mail is done)."""
    ref = mgr.runtime.registry.ask(m.Lookup(tenant), timeout=5)
    ref.ask(m.GetStatus(), timeout=5)
    mgr.runtime.registry.ask(m.AllStatuses(), timeout=5)


def lease_owner(mgr, tenant="t1"):
    lease = mgr.leases_store.holder(tenant)
    return lease.owner if lease else None


# --- one socket, whatever the caller does --------------------------------------------------


def test_connect_again_while_connecting_opens_nothing(mgr, sim):
    sim.hold_dials()
    first = mgr.connect("t1")
    assert first.state is TenantState.CONNECTING
    for _ in range(5):
        assert mgr.connect("t1").state is TenantState.CONNECTING
    assert sim.dial_attempts("t1") == 1
    sim.release_dials()
    mgr.wait_for("t1", CONNECTED, timeout=5)
    assert sim.dial_attempts("t1") == 1
    assert sim.max_concurrent_sockets() == 1


def test_connect_again_while_waiting_for_the_qr_opens_nothing(make_manager, clock):
    from wamgr.transport.sim import SimWhatsApp

    sim = SimWhatsApp(auto_pair=False, clock=clock)
    mgr = make_manager(transport=sim)
    mgr.connect("t1")
    pairing = mgr.wait_for("t1", TenantState.PAIRING, timeout=5)
    assert pairing.jid is None
    assert mgr.qr("t1") == sim.pending_pairings()[0]
    for _ in range(5):
        assert mgr.connect("t1").state is TenantState.PAIRING
    assert sim.dial_attempts("t1") == 1
    jid = sim.scan(sim.pending_pairings()[0])
    assert mgr.wait_for("t1", CONNECTED, timeout=5).jid == jid
    assert mgr.tenants_store.get("t1").status.jid == jid
    assert sim.max_concurrent_sockets() == 1


def test_connect_while_connected_returns_the_status(mgr, sim):
    jid = connected_jid(mgr)
    status = mgr.connect("t1")
    assert status.state is CONNECTED and status.jid == jid
    assert sim.dial_attempts("t1") == 1


def test_reconnect_opens_the_new_link_only_after_the_old_one_closed(mgr, sim):
    jid = connected_jid(mgr)
    mgr.reconnect("t1")
    mgr.wait_for("t1", CONNECTED, timeout=5)
    records = sim.sockets(jid)
    assert len(records) == 2
    assert records[0].close_reason is CloseReason.REQUESTED
    assert records[0].closed_at <= records[1].opened_at
    assert sim.max_concurrent_sockets(jid) == 1
    assert sim.logouts(jid) == 0


def test_reconnect_while_connecting_waits_for_the_close(mgr, sim):
    sim.hold_dials()
    mgr.connect("t1")
    mgr.reconnect("t1")
    sim.release_dials()
    mgr.wait_for("t1", CONNECTED, timeout=5)
    assert sim.max_concurrent_sockets() == 1


# --- backoff ------------------------------------------------------------------------------


def test_network_drop_reconnects_after_3_s_then_5_s(mgr, sim, clock):
    jid = connected_jid(mgr)
    sim.fail_dials(1)
    sim.drop(jid, "network")
    status = mgr.wait_for("t1", BACKOFF, timeout=5)
    assert status.attempt == 1
    assert status.next_retry_at.timestamp() == pytest.approx(clock.time() + 3.0)
    assert not mgr.is_connection_active("t1")
    dials = sim.dial_attempts("t1")

    clock.advance(2.9)
    settle(mgr)
    assert sim.dial_attempts("t1") == dials  # not yet
    clock.advance(0.1)
    status = mgr.wait_for("t1", BACKOFF, timeout=5)  # the retry's dial failed -> attempt 2
    _wait_attempt(mgr, 2)
    assert sim.dial_attempts("t1") == dials + 1
    status = mgr.status("t1")
    assert status.next_retry_at.timestamp() == pytest.approx(clock.time() + 5.0)
    assert "could not reach WhatsApp" in status.last_error

    clock.advance(4.9)
    settle(mgr)
    assert sim.dial_attempts("t1") == dials + 1
    clock.advance(0.1)
    mgr.wait_for("t1", CONNECTED, timeout=5)
    assert mgr.is_connection_active("t1")
    assert sim.max_concurrent_sockets() == 1


def _wait_attempt(mgr, attempt):
    for _ in range(200):
        status = mgr.status("t1")
        if status.attempt == attempt and status.state is BACKOFF:
            return status
        threading.Event().wait(0.01)
    raise AssertionError(f"attempt {attempt} never reached: {mgr.status('t1')}")


def test_flapping_keeps_escalating_while_60_s_up_resets(mgr, sim, clock):
    jid = connected_jid(mgr)
    delays = []
    for _ in range(7):  # up 5 s, down, repeatedly
        clock.advance(5.0)
        sim.drop(jid, "network")
        status = _wait_backoff_after(mgr, len(delays) + 1)
        delays.append(status.next_retry_at.timestamp() - clock.time())
        clock.advance(delays[-1])
        mgr.wait_for("t1", CONNECTED, timeout=5)
    assert [round(d) for d in delays] == [3, 5, 5, 5, 5, 10, 10]

    clock.advance(60.0)  # stable now
    sim.drop(jid, "network")
    status = _wait_backoff_after(mgr, 1)
    assert status.next_retry_at.timestamp() - clock.time() == pytest.approx(3.0)
    assert sim.max_concurrent_sockets() == 1


def _wait_backoff_after(mgr, attempt):
    for _ in range(500):
        status = mgr.status("t1")
        if status.state is BACKOFF and status.attempt == attempt:
            return status
        threading.Event().wait(0.01)
    raise AssertionError(f"no backoff with attempt {attempt}: {mgr.status('t1')}")


def test_connect_during_backoff_does_not_skip_the_wait(mgr, sim, clock):
    jid = connected_jid(mgr)
    sim.drop(jid, "keepalive_timeout")
    mgr.wait_for("t1", BACKOFF, timeout=5)
    dials = sim.dial_attempts("t1")
    for _ in range(10):
        assert mgr.connect("t1").state is BACKOFF
    assert sim.dial_attempts("t1") == dials
    clock.advance(3.0)
    mgr.wait_for("t1", CONNECTED, timeout=5)


# --- states that stop -------------------------------------------------------------------


def test_rogue_client_replaces_us_conflict_no_reconnect_lease_released(mgr, sim, clock):
    jid = connected_jid(mgr)
    assert lease_owner(mgr) == "inst-0"
    sim.connect_rogue(jid)
    status = mgr.wait_for("t1", TenantState.CONFLICT, timeout=5)
    assert "440" in status.last_error
    assert status.next_retry_at is None
    dials = sim.dial_attempts("t1")
    clock.advance(3600.0)
    settle(mgr)
    assert sim.dial_attempts("t1") == dials
    assert lease_owner(mgr) is None
    assert mgr.status("t1").jid == jid  # auth kept
    # the collision WhatsApp saw is the rogue's, not ours: we never opened a second socket
    assert [r.tenant_id for r in sim.sockets(jid)] == ["t1", None]

    sim.disconnect_rogue(jid)
    mgr.connect("t1")  # the operator's manual connect
    mgr.wait_for("t1", CONNECTED, timeout=5)


def test_logged_out_clears_auth_and_sends_no_logout(mgr, sim, clock):
    jid = connected_jid(mgr)
    sim.drop(jid, "logged_out")
    status = mgr.wait_for("t1", TenantState.LOGGED_OUT, timeout=5)
    assert status.jid is None
    assert "401" in status.last_error
    assert sim.logouts(jid) == 0
    assert lease_owner(mgr) is None
    clock.advance(3600.0)
    settle(mgr)
    assert sim.dial_attempts("t1") == 1
    assert mgr.runtime.writer.flush(5)
    assert mgr.tenants_store.get("t1").status.jid is None

    mgr.connect("t1")  # pairs as a new device, never resumes the old one
    new = mgr.wait_for("t1", CONNECTED, timeout=5)
    assert new.jid != jid


def test_temporary_ban_waits_for_its_expiry(mgr, sim, clock):
    jid = connected_jid(mgr)
    sim.drop(jid, "temporary_ban", ban_expires_in_s=600.0)
    status = mgr.wait_for("t1", TenantState.BANNED, timeout=5)
    assert status.next_retry_at.timestamp() == pytest.approx(clock.time() + 600.0)
    assert lease_owner(mgr) == "inst-0"  # kept
    clock.advance(599.0)
    settle(mgr)
    assert sim.dial_attempts("t1") == 1
    clock.advance(1.0)
    mgr.wait_for("t1", CONNECTED, timeout=5)


@pytest.mark.parametrize("reason", ["client_outdated", "bad_user_agent", "connect_failure"])
def test_operator_failures_stop_in_failed(mgr, sim, clock, reason):
    jid = connected_jid(mgr)
    sim.drop(jid, reason)
    status = mgr.wait_for("t1", TenantState.FAILED, timeout=5)
    assert status.jid == jid
    clock.advance(3600.0)
    settle(mgr)
    assert sim.dial_attempts("t1") == 1
    assert lease_owner(mgr) is None


def test_too_many_undecryptable_messages_fail_with_clear_auth_hint(make_manager, sim):
    mgr = make_manager(undecryptable_limit=3)
    jid = connected_jid(mgr)
    for _ in range(4):
        sim.undecryptable(jid)
    status = mgr.wait_for("t1", TenantState.FAILED, timeout=5)
    assert "wamgr clear-auth" in status.last_error
    assert status.jid == jid
    assert sim.logouts(jid) == 0


def test_corrupted_keys_with_clear_auth_on_corruption_re_pair(make_manager, sim):
    mgr = make_manager(undecryptable_limit=2, clear_auth_on_corruption=True)
    jid = connected_jid(mgr)
    for _ in range(3):
        sim.undecryptable(jid)
    for _ in range(500):
        status = mgr.status("t1")
        if status.state is CONNECTED and status.jid not in (None, jid):
            break
        threading.Event().wait(0.01)
    assert status.jid not in (None, jid)
    assert sim.max_concurrent_sockets() == 1


# --- generations ------------------------------------------------------------------------


def test_an_event_from_an_old_link_generation_is_ignored(mgr, sim):
    jid = connected_jid(mgr)
    mgr.reconnect("t1")
    mgr.wait_for("t1", CONNECTED, timeout=5)
    ref = mgr.runtime.registry.ask(m.Lookup("t1"), timeout=5)
    ref.tell(Closed(generation=1, reason=CloseReason.LOGGED_OUT, detail="stale"))
    ref.tell(Connected(generation=1, jid="999@s.whatsapp.net"))
    settle(mgr)
    status = mgr.status("t1")
    assert status.state is CONNECTED and status.jid == jid
    assert mgr.is_connection_active("t1")


# --- remove, send ------------------------------------------------------------------------


def test_remove_closes_without_logout_and_keeps_the_device(mgr, sim):
    jid = connected_jid(mgr)
    status = mgr.remove("t1")
    assert status.state is TenantState.STOPPED
    assert sim.open_sockets(jid) == 0 and sim.logouts(jid) == 0
    assert lease_owner(mgr) is None
    assert not mgr.is_connection_active("t1")
    assert mgr.connect("t1") and mgr.wait_for("t1", CONNECTED, timeout=5).jid == jid


@pytest.mark.slow
def test_remove_with_logout_unlinks_the_device(mgr, sim):
    jid = connected_jid(mgr)
    status = mgr.remove("t1", do_logout=True)
    assert status.state is TenantState.STOPPED and status.jid is None
    assert sim.logouts(jid) == 1


@pytest.mark.slow
def test_send_text_when_connected_and_when_not(mgr, sim):
    with pytest.raises(UnknownTenant):
        mgr.send_text("t1", "15550001111", "hi")
    sim.hold_dials()
    mgr.connect("t1")
    with pytest.raises(NotConnected, match=r"state connecting\): wait until it is connected"):
        mgr.send_text("t1", "15550001111", "hi")
    sim.release_dials()
    jid = mgr.wait_for("t1", CONNECTED, timeout=5).jid
    message_id = mgr.send_text("t1", "15550001111", "hi")
    assert sim.sent_messages(jid) == [("15550001111", "hi", message_id)]
    sim.drop(jid, "network")
    mgr.wait_for("t1", BACKOFF, timeout=5)
    with pytest.raises(NotConnected, match=r"state backoff\): it is reconnecting"):
        mgr.send_text("t1", "15550001111", "hi")


@pytest.mark.slow
def test_subscribers_get_status_changes_and_inbound_messages(mgr, sim):
    from wamgr import InboundMessage, StatusEvent

    seen = []
    got_message = threading.Event()

    def on_event(event):
        seen.append(event)
        if isinstance(event, InboundMessage):
            got_message.set()

    mgr.subscribe(on_event)
    jid = connected_jid(mgr)
    sim.inbound(jid, "15550002222@s.whatsapp.net", "hello")
    assert got_message.wait(5)
    states = [e.status.state for e in seen if isinstance(e, StatusEvent)]
    assert states[-1] is CONNECTED
    inbound = [e for e in seen if isinstance(e, InboundMessage)]
    assert inbound[0].text == "hello" and inbound[0].tenant_id == "t1"


@pytest.mark.slow
def test_a_ban_seen_by_a_host_whose_clock_is_behind_holds_on_the_database_clock(make_manager, sim):
    """Issue #12 (6): a ban's expiry is stored on the database's clock, so an instance whose
    clock is 2 h behind does not store a retry time in the past for others to act on."""
    import time

    from wamgr.clock import VirtualClock

    behind = VirtualClock(start_time=time.time() - 7200.0)
    first = make_manager(instance_id="behind", clock=behind)
    jid = connected_jid(first)
    sim.drop(jid, "temporary_ban", ban_expires_in_s=3600.0)
    first.wait_for("t1", TenantState.BANNED, timeout=5)
    first.stop()  # the ban outlives this instance (its lease is released)
    second = make_manager(instance_id="other", claim_interval_s=3600.0)
    stored = second.tenants_store.get("t1").status.next_retry_at
    assert stored.timestamp() == pytest.approx(time.time() + 3600.0, abs=60.0)
    assert second.runtime.claimer.run_once() == 0  # still banned, on the database's clock
    assert sim.dial_attempts("t1") == 1
