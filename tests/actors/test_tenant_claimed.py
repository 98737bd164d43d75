"""A tenant connected by a claim pass's batch (``Connect(Claimed(...))``): the lease the batch
took is judged by the same rules as one the tenant takes itself, and needs no statement."""

from __future__ import annotations

import threading

import pytest

from wamgr import ManagerStopped, TenantState
from wamgr.actors import messages as m
from wamgr.actors.leases import LeaseGranted
from wamgr.policy import Decision
from wamgr.store.leases import Grant
from wamgr.transport.base import CloseReason, Connected

JID = "15550000001@s.whatsapp.net"


def _claimed(rig, token: int = 42, **fields) -> m.Connect:
    return m.Connect(m.Claimed(rig.clock.monotonic(), Grant(token, None), **fields))


def test_a_batch_grant_opens_the_link_with_no_statement_and_the_keeper_renews_it(rig):
    dials = []
    create = rig.transport.create_link
    rig.transport.create_link = lambda *args, proxy=None: (
        dials.append((args[1], proxy)) or create(*args, proxy=proxy)
    )
    sent_at = rig.clock.monotonic()
    rig.clock.advance(1.0)  # the Connect arrives a second after the batch statement was sent
    status = rig.ask(m.Connect(m.Claimed(sent_at, Grant(42, None), jid=JID, proxy="socks5://p:1")))
    assert status.state is TenantState.CONNECTING
    assert rig.leases.current == {}  # no statement of its own
    assert dials == [(JID, "socks5://p:1")]  # the stored device and proxy the batch read
    granted = rig.keeper.wait_for(LeaseGranted)[0]
    assert (granted.token, granted.sent_at) == (42, sent_at)  # dated from the batch's sending
    granted.fence.trip("lost")  # the keeper's fence holds the link of a batch grant too
    assert rig.link.closes and rig.link.closes[0][0] is False


def test_a_batch_grant_older_than_the_renew_deadline_is_not_used(rig):
    connect = _claimed(rig)
    rig.clock.advance(rig.config.renew_deadline_s)
    status = rig.ask(connect)
    assert status.state is TenantState.STANDBY and "too late" in status.last_error
    assert rig.transport.links == []
    assert rig.keeper.of(LeaseGranted) == []  # nobody renews it: it expires by itself


def test_a_lease_the_batch_found_held_is_standby_naming_the_holder(rig):
    status = rig.ask(m.Connect(m.Claimed(rig.clock.monotonic(), held_by="other")))
    assert (status.state, status.owner) == (TenantState.STANDBY, "other")
    assert rig.transport.links == [] and rig.leases.current == {}


def test_a_batch_that_decided_nothing_leaves_the_lease_to_the_tenant(rig):
    assert rig.ask(m.Connect(m.Claimed(rig.clock.monotonic()))).state is TenantState.CONNECTING
    token = rig.keeper.wait_for(LeaseGranted)[0].token
    assert rig.leases.current["t1"].token == token  # taken by the tenant's own statement


def test_a_batch_grant_the_tenant_does_not_use_is_given_back_by_its_token(rig):
    rig.ask(m.Connect())  # connected meanwhile under its own grant (token 1)
    rig.link.emit(Connected(rig.link.generation, JID))
    own = rig.keeper.wait_for(LeaseGranted)[0].token
    assert rig.ask(_claimed(rig, token=77)).state is TenantState.CONNECTED
    assert rig.leases.released == [("t1", 77)]  # only the unused grant, never the lease held
    assert len(rig.transport.links) == 1 and rig.leases.current["t1"].token == own


def test_a_batch_grant_after_shutdown_is_given_back(rig):
    done = threading.Event()
    rig.tell(m.Shutdown(done))
    assert done.wait(5)
    with pytest.raises(ManagerStopped):
        rig.ask(_claimed(rig, token=5))
    assert rig.leases.released == [("t1", 5)]
    assert rig.transport.links == []


def test_a_claim_pass_does_not_reconnect_a_tenant_parked_since_it_read_the_store(rig):
    rig.ask(m.Connect())
    rig.link.emit(Connected(rig.link.generation, JID))
    rig.link.finish_close(CloseReason.LOGGED_OUT, "401")  # the supervisor parks it
    decision = rig.supervisor.wait_for(m.LinkClosed)[0]
    parked = Decision(TenantState.LOGGED_OUT, None, 0, True, True, "401 logged out")
    rig.tell(m.ApplyDecision(decision.generation, parked, None))
    assert rig.status().state is TenantState.LOGGED_OUT
    status = rig.ask(_claimed(rig, token=9))  # a pass that read the store before the park
    assert status.state is TenantState.LOGGED_OUT and len(rig.transport.links) == 1
    assert ("t1", 9) in rig.leases.released
    assert rig.ask(m.Connect()).state is TenantState.CONNECTING  # an operator's connect does


def test_the_applications_connect_with_its_grant_reconnects_a_parked_tenant(rig):
    rig.ask(m.Connect())
    rig.link.emit(Connected(rig.link.generation, JID))
    rig.link.finish_close(CloseReason.LOGGED_OUT, "401")
    decision = rig.supervisor.wait_for(m.LinkClosed)[0]
    parked = Decision(TenantState.LOGGED_OUT, None, 0, True, True, "401 logged out")
    rig.tell(m.ApplyDecision(decision.generation, parked, None))
    assert rig.status().state is TenantState.LOGGED_OUT
    connect = m.Connect(m.Claimed(rig.clock.monotonic(), Grant(11, None)), manual=True)
    assert rig.ask(connect).state is TenantState.CONNECTING  # connect()'s grant, used
    assert len(rig.transport.links) == 2 and ("t1", 11) not in rig.leases.released
    assert rig.keeper.wait_for(LeaseGranted, 2)[-1].token == 11
