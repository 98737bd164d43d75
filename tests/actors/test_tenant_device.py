"""A tenant's device: stored once paired, and never a device another tenant is paired as.

Issue #13, defect 10: after a restart the in-process simulator had forgotten its devices and
numbered new ones from 1 again, so a tenant paired as a JID another tenant was stored with;
``set_jid`` raised UniqueViolation inside the actor ("TenantActor failed handling Paired"),
and the tenant went on connected as the other tenant's device. Now the pairing is refused
with JidInUse: the link is closed without logout and the tenant waits in ``failed``.
"""

from __future__ import annotations

from wamgr import TenantState
from wamgr.actors import messages as m
from wamgr.errors import JidInUse
from wamgr.transport.base import CloseReason, Connected, Paired
from wamgr.transport.sim import SimWhatsApp

JID = "15550000001@s.whatsapp.net"


def test_a_device_another_tenant_is_paired_as_is_refused_without_logout(rig, logs):
    def set_jid(tenant_id: str, jid: str | None) -> None:
        if jid == JID:
            raise JidInUse(tenant_id, jid, "a")
        rig.tenants.jids[tenant_id] = jid

    rig.tenants.set_jid = set_jid  # the tenants table, where tenant "a" is paired as JID
    rig.ask(m.Connect())
    link = rig.link

    link.emit(Paired(link.generation, JID))
    link.emit(Connected(link.generation, JID))

    (closed,) = rig.supervisor.wait_for(m.LinkClosed)
    assert closed.reason is CloseReason.DEVICE_IN_USE
    assert f"device {JID} is already paired to tenant 'a'" in closed.detail
    assert [do_logout for do_logout, _ in link.closes] == [False]  # closed once, no logout
    assert rig.transport.cleared == []  # the keys are tenant a's: never cleared from here
    status = rig.status()
    assert status.jid is None  # the next link pairs a new device
    assert TenantState.CONNECTED not in [s.state for s, _ in rig.writer.written]
    assert [line for line in logs if "refused device" in line] != []
    assert not [line for line in logs if "failed handling" in line]


def test_a_second_tenant_paired_as_a_stored_device_fails_naming_its_owner(
    make_manager, clock, logs
):
    first = make_manager(instance_id="first")
    first.connect("a")
    assert first.wait_for("a", TenantState.CONNECTED, timeout=5).jid == JID
    first.stop()
    # A simulator that forgot its devices numbers them from 1 again: b is paired as a's JID.
    forgetful = SimWhatsApp(auto_pair=True, clock=clock)
    second = make_manager(instance_id="second", transport=forgetful, claim_tenants=False)

    second.connect("b")
    status = second.wait_for("b", TenantState.FAILED, timeout=5)

    assert status.jid is None
    assert status.last_error.startswith("device in use by another tenant: ")
    assert f"device {JID} is already paired to tenant 'a'" in status.last_error
    assert "wamgr pair b" in status.last_error
    assert second.status("a").jid == JID  # a keeps its device
    assert not second.is_connection_active("b")
    assert forgetful.logouts(JID) == 0  # closed without logout: a's device stays linked
    assert forgetful.open_sockets(JID) == 0
    assert not [line for line in logs if "failed handling" in line or "Traceback" in line]

    second.connect("b")  # the operator pairs b again: a new device, its own
    status = second.wait_for("b", TenantState.CONNECTED, timeout=5)
    assert status.jid not in (None, JID)
