"""The durable outbound queue through the manager: queued whatever the state, sent once the
tenant is connected, in order, exactly once; idempotency keys, expiry, cancel, unknown."""

from __future__ import annotations

from wamgr import OutboundStatus, TenantState
from wamgr.transport.sim import SimWhatsApp

CONNECTED = TenantState.CONNECTED
TO = "15550001111"


def _unpaced(make_manager, **overrides):
    return make_manager(send_rate=None, **overrides)


def test_a_message_to_a_connected_tenant_is_sent(make_manager, sim: SimWhatsApp, wait_until):
    mgr = _unpaced(make_manager)
    mgr.connect("t1")
    jid = mgr.wait_for("t1", CONNECTED, timeout=5).jid

    queued = mgr.send("t1", TO, "hello")

    assert queued.status is OutboundStatus.QUEUED
    wait_until(lambda: mgr.outbound("t1", queued.message_id).status is OutboundStatus.SENT)
    sent = mgr.outbound("t1", queued.message_id)
    assert sim.sent_messages(jid) == [(TO, "hello", sent.wa_message_id)]
    assert sent.sent_at is not None
