"""Calls about a tenant asked of the instance that does not hold it are carried out by the
holder, and its answer (or its named error) comes back: two managers on one database."""

from __future__ import annotations

import time

import pytest

from wamgr import (
    HolderNotAnswering,
    InvalidRecipient,
    NotConnected,
    NotPairing,
    OperationTimeout,
    TenantState,
    UnknownTenant,
    WamgrError,
)
from wamgr.errors import LockBusy
from wamgr.forwarding import error_of, reply_of, status_of
from wamgr.transport.sim import SimWhatsApp

CONNECTED = TenantState.CONNECTED
PAIRING = TenantState.PAIRING


@pytest.fixture
def pair(make_manager):
    """Two managers on one database; ``t1`` connected by the first (``inst-0``)."""
    owner, other = make_manager(), make_manager()
    owner.connect("t1")
    jid = owner.wait_for("t1", CONNECTED, timeout=5).jid
    return owner, other, jid


def _calls_left(mgr) -> int:
    with mgr.runtime.db.connection() as conn:
        return conn.execute("SELECT count(*) FROM wamgr_calls").fetchone()[0]


def test_send_text_through_the_instance_that_does_not_hold_the_tenant(pair, sim):
    _, other, jid = pair

    message_id = other.send_text("t1", "15550001111", "hello from afar")

    assert sim.sent_messages(jid) == [("15550001111", "hello from afar", message_id)]
    assert other.local_statuses() == []  # nothing was opened on the asking instance
    assert _calls_left(other) == 0  # the asker deleted the call as it read the reply
    assert sim.max_concurrent_sockets() == 1


@pytest.mark.slow
def test_the_holders_named_error_comes_back_naming_the_holder(pair, sim):
    owner, other, jid = pair
    sim.hold_dials()
    sim.drop(jid, "network")  # the owner is reconnecting: not connected
    owner.wait_for("t1", TenantState.BACKOFF, timeout=5)

    with pytest.raises(NotConnected) as caught:
        other.send_text("t1", "15550001111", "hi")

    assert caught.value.tenant_id == "t1"
    assert caught.value.state == "backoff"
    assert caught.value.owner == "inst-0"
    assert "on instance 'inst-0'" in caught.value.format_message()
    with pytest.raises(NotPairing) as not_pairing:
        other.pair_code("t1", "+1 555 000 2222")
    assert not_pairing.value.state == "backoff"


@pytest.mark.slow
def test_qr_and_pair_code_come_from_the_holder(make_manager, clock):
    sim = SimWhatsApp(auto_pair=False, clock=clock)
    owner, other = make_manager(transport=sim), make_manager(transport=sim)
    owner.connect("t1")
    owner.wait_for("t1", PAIRING, timeout=5)

    code = other.qr("t1")
    pair_code = other.pair_code("t1", "+1 555 000 2222")

    assert code is not None and code == owner.qr("t1") == sim.pending_pairings()[0]
    assert pair_code.endswith("2222")
    jid = sim.enter_code(pair_code)  # the phone types it: the holder's link pairs
    assert owner.wait_for("t1", CONNECTED, timeout=5).jid == jid
    assert other.local_statuses() == []


@pytest.mark.slow
def test_clear_auth_through_the_other_instance_clears_the_holders_credentials(pair, sim):
    owner, other, jid = pair

    status = other.clear_auth("t1")

    assert status.state is TenantState.LOGGED_OUT and status.jid is None
    assert owner.status("t1").state is TenantState.LOGGED_OUT
    assert owner.runtime.leases.live_owner("t1") is None
    assert sim.open_sockets(jid) == 0 and sim.logouts(jid) == 0
    owner.connect("t1")  # its credentials are gone: it pairs a new device
    assert owner.wait_for("t1", CONNECTED, timeout=5).jid not in (None, jid)


@pytest.mark.slow
def test_a_holder_that_does_not_answer_is_named_within_the_timeout(pair, sim):
    owner, other, jid = pair
    owner.runtime.listener.stop(5)  # alive and holding the lease, but deaf

    started = time.monotonic()
    with pytest.raises(HolderNotAnswering) as caught:
        other.send_text("t1", "15550001111", "lost", timeout=0.5)

    assert 0.5 <= time.monotonic() - started < 2.0
    assert isinstance(caught.value, OperationTimeout)
    assert caught.value.holder == "inst-0" and caught.value.tenant_id == "t1"
    assert "'inst-0'" in caught.value.format_message()
    assert sim.sent_messages(jid) == []
    assert _calls_left(other) == 0  # the asker took its call back


@pytest.mark.slow
def test_a_stale_call_nobody_collected_is_dropped(pair):
    _, other, _ = pair
    calls = other.runtime.calls
    assert calls.send("c0ffee00-0000-4000-8000-000000000000", "t1", "qr", {}, sender="x",
                      timeout_s=-3600) == "inst-0"  # fmt: skip

    assert calls.take("inst-0") == []  # past its deadline: never run
    assert calls.drop_stale() == 1


def test_calls_for_a_tenant_this_instance_holds_or_nobody_holds_run_here(mgr, sim):
    mgr.connect("t1")
    jid = mgr.wait_for("t1", CONNECTED, timeout=5).jid
    assert mgr.send_text("t1", "15550001111", "local")
    assert len(sim.sent_messages(jid)) == 1

    mgr.remove("t1")
    with pytest.raises(NotConnected) as caught:
        mgr.send_text("t1", "15550001111", "nobody holds it")
    assert caught.value.owner is None and caught.value.state == "stopped"
    with pytest.raises(UnknownTenant):
        mgr.send_text("ghost", "15550001111", "x")


# --- replies: values and errors as JSON --------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        NotConnected("t1", "backoff", "inst-0"),
        NotPairing("t1", "connected"),
        UnknownTenant("t1"),
        InvalidRecipient("x\ny"),
        HolderNotAnswering("t1", "inst-9", "qr('t1')", 2.0),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_named_error_comes_back_as_the_same_class_message_and_fields(error):
    back = error_of(reply_of(error=error))

    assert type(back) is type(error)
    assert back.format_message() == error.format_message()
    assert vars(back) == vars(error)


def test_an_error_with_fields_that_are_not_json_keeps_its_class_and_message():
    error = LockBusy("k", 1.0, None, "inst-1")
    back = error_of(reply_of(error=error))
    assert type(back) is LockBusy and str(back) == str(error) and back.owner == "inst-1"


def test_a_bug_on_the_holder_comes_back_as_a_wamgr_error_naming_it():
    back = error_of(reply_of(error=KeyError("to")))
    assert type(back) is WamgrError and "KeyError" in str(back)


@pytest.mark.slow
def test_a_status_survives_the_trip(pair):
    owner, _, _ = pair
    status = owner.status("t1")
    assert status_of(reply_of(status)["ok"]) == status
