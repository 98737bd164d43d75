"""NeonizeLink: a neonize client's life for one tenant (pairing, sending, closing, the next
link), with Go's calls played in Python by ``FakeGoClient`` (conftest.py).

What each event *means* is tested in test_neonize_events.py; here, what the link does.
"""

from __future__ import annotations

import threading

import pytest

from wamgr import PairingFailed, TenantState
from wamgr.cli.pairing import pair_tenant
from wamgr.transport.base import Closed, CloseReason, LinkEvent, Qr
from wamgr.transport.neonize.link import LinkNotReady

from .conftest import JID, login_status, pair

S = TenantState


class _Events:
    """A link's on_event callback that records what it got; ``wait_for`` a kind of event."""

    def __init__(self) -> None:
        self.events: list[LinkEvent] = []
        self._changed = threading.Condition()

    def __call__(self, event: LinkEvent) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def wait_for(self, kind: type[LinkEvent], timeout: float = 5.0) -> LinkEvent:
        with self._changed:
            assert self._changed.wait_for(
                lambda: any(isinstance(e, kind) for e in self.events), timeout
            ), f"no {kind.__name__} in {self.events}"
            return next(e for e in self.events if isinstance(e, kind))


def test_a_link_closed_before_it_opened_reports_requested_and_builds_no_client(fake_neonize):
    events = _Events()
    link = fake_neonize.transport.create_link("t1", None, 1, events)
    link.close(do_logout=False)
    assert events.events == [Closed(1, CloseReason.REQUESTED, "closed before it opened")]
    assert fake_neonize.clients == []
    with pytest.raises(RuntimeError):
        link.open()


def test_a_link_refuses_to_send_or_pair_in_the_wrong_state(fake_neonize):
    events = _Events()
    link = fake_neonize.transport.create_link("t1", None, 1, events)
    link.open()
    events.wait_for(Qr)
    with pytest.raises(LinkNotReady, match="not connected"):
        link.send_text("15552223333", "hi")
    assert link.request_pair_code("15551234567") == "ABCD-4567"  # pairing: allowed
    link.close(do_logout=False)
    closed = events.wait_for(Closed)
    assert closed.reason is CloseReason.REQUESTED
    with pytest.raises(LinkNotReady):
        link.request_pair_code("15551234567")
    assert fake_neonize.client().calls[-1] == "stop"


def test_pairing_by_qr_stores_the_device_jid_then_connects(make_manager, fake_neonize):
    mgr = make_manager(transport=fake_neonize.transport)
    mgr.connect("t1")
    mgr.wait_for("t1", S.PAIRING, timeout=5)
    assert mgr.qr("t1") == "2@fake-qr,noise,identity,adv"
    client = fake_neonize.client()
    assert client.connect_args == (None, True)  # a new device, no JID
    pair(client, JID)
    status = mgr.wait_for("t1", S.CONNECTED, timeout=5)
    assert status.jid == JID
    assert mgr.qr("t1") is None


def test_a_pair_code_is_asked_for_while_pairing(make_manager, fake_neonize):
    mgr = make_manager(transport=fake_neonize.transport)
    mgr.connect("t1")
    mgr.wait_for("t1", S.PAIRING, timeout=5)
    assert mgr.pair_code("t1", "+1 555 123 4567") == "ABCD-4567"
    assert "PairPhone" in fake_neonize.client().calls


@pytest.mark.slow
def test_wamgr_pair_reports_a_qr_nobody_scanned(make_manager, fake_neonize):
    mgr = make_manager(transport=fake_neonize.transport)
    shown: list[str] = []

    def show(text: str) -> None:
        shown.append(text)
        if "Linked devices" in text:  # WhatsApp's 160 s pass without a scan
            login_status(fake_neonize.client(), "timeout")

    with pytest.raises(PairingFailed, match="no phone scanned"):
        pair_tenant(mgr, "t1", timeout_s=10, show=show)
    assert "█" in shown[0]


def test_send_text_goes_through_the_client(connected):
    mgr, client = connected
    message_id = mgr.send_text("t1", "+1 555 222 3333", "hi")
    assert message_id == "3EB00001"
    assert client.sent == [("15552223333@s.whatsapp.net", "hi")]


def test_remove_with_logout_unlinks_a_logged_in_device(connected):
    mgr, client = connected
    status = mgr.remove("t1", do_logout=True)
    assert status.state is S.STOPPED and status.jid is None
    assert client.calls.index("logout") < client.calls.index("stop")


def test_remove_without_logout_never_logs_out(connected):
    mgr, client = connected
    mgr.remove("t1")
    assert "logout" not in client.calls and client.calls[-1] == "stop"


def test_reconnect_builds_the_next_client_with_the_stored_jid(connected, fake_neonize):
    mgr, first = connected
    assert first.connect_args == (JID, False)
    mgr.reconnect("t1")
    second = fake_neonize.client(1)
    assert second.connect_args == (JID, False)
    assert second.uuid != first.uuid  # never the same Go map key twice
    assert first.calls[-1] == "stop"
