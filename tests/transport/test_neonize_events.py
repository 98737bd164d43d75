"""Every neonize event, built as its protobuf message and fed to a link's handler as Go feeds
it, leads the tenant to the state of the table in docs/neonize.md.

The links are real NeonizeLinks (gate, start hold, teardown) on a client whose Go calls are
played in Python (``FakeGoClient`` in conftest.py); the manager, actors and policy are real.
"""

from __future__ import annotations

import threading
import time

import pytest

import wamgr.transport.neonize.lib  # noqa: F401  # loads neonize quietly, before its modules
from wamgr import InboundMessage, TenantState

from .conftest import JID, feed, jid_proto, login_status

S = TenantState


@pytest.fixture
def connected(make_manager, fake_neonize, database_url):
    """A manager whose tenant t1 resumed device JID and is connected."""
    _insert_device(database_url, JID)
    _store_jid(database_url, "t1", JID)
    mgr = make_manager(transport=fake_neonize.transport)
    mgr.connect("t1")
    client = fake_neonize.client()
    feed(client, _ev().ConnectedEv(status=True))
    status = mgr.wait_for("t1", S.CONNECTED, timeout=5)
    assert status.jid == JID
    return mgr, client


def _ev():
    import neonize.events as events

    return events


def _proto():
    from neonize.proto import Neonize_pb2

    return Neonize_pb2


def _failure(reason: str):
    return _proto().ConnectFailureReason.Value(reason)


def _close_cases():
    ev, proto = _ev(), _proto()
    src = proto.MessageSource
    raw_415 = proto.Node(Tag="failure", Attrs=[proto.NodeAttrs(name="reason", integer=415)])
    return [
        (
            "logged out 401",
            ev.LoggedOutEv(OnConnect=True, Reason=_failure("LOGGED_OUT")),
            S.LOGGED_OUT,
            "401",
        ),
        ("logged out, reason unset", ev.LoggedOutEv(OnConnect=False), S.LOGGED_OUT, "401"),
        (
            "main device gone 403",
            ev.LoggedOutEv(Reason=_failure("MAIN_DEVICE_GONE")),
            S.LOGGED_OUT,
            "403",
        ),
        (
            "unknown logout 406",
            ev.LoggedOutEv(Reason=_failure("UNKNOWN_LOGOUT")),
            S.LOGGED_OUT,
            "406",
        ),
        ("stream replaced 440", ev.StreamReplacedEv(), S.CONFLICT, "440"),
        ("client outdated 405", ev.ClientOutdatedEv(), S.FAILED, "405"),
        (
            "bad user agent 409",
            ev.ConnectFailureEv(Reason=_failure("BAD_USER_AGENT")),
            S.FAILED,
            "409",
        ),
        (
            "connect failure 400",
            ev.ConnectFailureEv(Reason=_failure("GENERIC"), Message="x"),
            S.FAILED,
            "400",
        ),
        (
            "connect failure 500",
            ev.ConnectFailureEv(Reason=_failure("INTERNAL_SERVER_ERROR")),
            S.BACKOFF,
            "500",
        ),
        (
            "connect failure 503",
            ev.ConnectFailureEv(Reason=_failure("SERVICE_UNAVAILABLE")),
            S.BACKOFF,
            "503",
        ),
        (
            "connect failure, code neonize cannot encode",
            ev.ConnectFailureEv(Raw=raw_415),
            S.FAILED,
            "415",
        ),
        ("stream error", ev.StreamErrorEv(Code="516"), S.BACKOFF, "516"),
        (
            "keep-alive: two pings failed",
            ev.KeepAliveTimeoutEv(ErrorCount=2, LastSuccess=int(time.time()) - 25),
            S.BACKOFF,
            "keep-alive",
        ),
        (
            "keep-alive: silent over 60 s",
            ev.KeepAliveTimeoutEv(ErrorCount=1, LastSuccess=int(time.time()) - 90),
            S.BACKOFF,
            "keep-alive",
        ),
        ("disconnected", ev.DisconnectedEv(status=True), S.BACKOFF, "disconnected"),
        (
            "pair error",
            ev.PairStatusEv(Status=ev.PairStatusEv.ERROR, Error="rejected", ID=jid_proto(JID)),
            S.FAILED,
            "rejected",
        ),
        (
            "temporary ban 402",
            ev.TemporaryBanEv(Code=ev.TemporaryBanEv.BLOCKED_BY_USERS, Expire=3600),
            S.BANNED,
            "102",
        ),
        (
            "temp ban via connect failure",
            ev.ConnectFailureEv(Reason=_failure("TEMP_BANNED")),
            S.BANNED,
            "402",
        ),
        (
            "message from someone, then disconnect",
            ev.MessageEv(
                Info=proto.MessageInfo(
                    ID="M1",
                    MessageSource=src(
                        Chat=jid_proto("15559998888@s.whatsapp.net"),
                        Sender=jid_proto("15559998888@s.whatsapp.net"),
                    ),
                )
            ),
            S.CONNECTED,
            None,
        ),
    ]


@pytest.mark.parametrize(
    ("message", "state", "detail"),
    [case[1:] for case in _close_cases()],
    ids=[case[0] for case in _close_cases()],
)
def test_each_event_leads_to_the_state_of_the_table(connected, message, state, detail, clock):
    mgr, client = connected
    feed(client, message)
    if state is S.CONNECTED:
        time.sleep(0.1)  # give a wrong close a chance to show
        assert mgr.status("t1").state is S.CONNECTED
        assert "stop" not in client.calls
        return
    status = mgr.wait_for("t1", state, timeout=5)
    assert detail in status.last_error
    # the client was torn down before Closed: disconnect, checked, then stop, and no Go after
    assert client.calls.index("disconnect") < client.calls.index("stop")
    assert client.calls[-1] == "stop"
    if state is S.LOGGED_OUT:
        assert status.jid is None  # credentials cleared
    if state is S.BANNED:
        assert status.next_retry_at.timestamp() == pytest.approx(clock.time() + 3600.0)


def test_a_keep_alive_within_limits_keeps_the_link(connected):
    mgr, client = connected
    feed(client, _ev().KeepAliveTimeoutEv(ErrorCount=1, LastSuccess=int(time.time()) - 20))
    feed(client, _ev().KeepAliveRestoredEv())
    time.sleep(0.1)
    assert mgr.status("t1").state is S.CONNECTED
    assert "stop" not in client.calls


def test_messages_reach_subscribers_once_per_id(connected):
    mgr, client = connected
    proto = _proto()
    inbox: list[InboundMessage] = []
    arrived = threading.Event()

    def subscriber(event):
        if isinstance(event, InboundMessage):
            inbox.append(event)
            if event.message_id == "LAST":
                arrived.set()

    mgr.subscribe(subscriber)
    peer = jid_proto("15559998888:3@s.whatsapp.net")
    lid = proto.JID(
        User="123456789", Server="lid", RawAgent=0, Device=0, Integrator=0, IsEmpty=False
    )

    def message(msg_id, text=None, sender=peer, alt=None, **source):
        from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message

        src = proto.MessageSource(Chat=sender, Sender=sender, **source)
        if alt is not None:
            src.SenderAlt.CopyFrom(alt)
        body = Message(conversation=text) if text is not None else Message()
        return _ev().MessageEv(Info=proto.MessageInfo(ID=msg_id, MessageSource=src), Message=body)

    feed(client, message("A", "hello"))
    feed(client, message("A", "hello"))  # redelivered
    feed(client, message("B", "mine", IsFromMe=True))  # our own: not for subscribers
    feed(client, message("C", "group", IsGroup=True))
    feed(client, message("D"))  # no text (media without caption...)
    feed(client, message("E", "via lid", sender=lid, alt=jid_proto("15557776666@s.whatsapp.net")))
    feed(client, message("LAST", "bye"))
    assert arrived.wait(5)
    assert [(m.message_id, m.sender, m.text) for m in inbox] == [
        ("A", "15559998888@s.whatsapp.net", "hello"),
        ("E", "15557776666@s.whatsapp.net", "via lid"),
        ("LAST", "15559998888@s.whatsapp.net", "bye"),
    ]


def test_too_many_undecryptable_messages_mean_failed_with_the_clear_auth_hint(
    make_manager, fake_neonize, database_url
):
    proto = _proto()
    _insert_device(database_url, JID)
    _store_jid(database_url, "t1", JID)
    mgr = make_manager(transport=fake_neonize.transport, undecryptable_limit=3)
    mgr.connect("t1")
    client = fake_neonize.client()
    feed(client, _ev().ConnectedEv(status=True))
    mgr.wait_for("t1", S.CONNECTED, timeout=5)
    src = proto.MessageSource(
        Chat=jid_proto("1555@s.whatsapp.net"), Sender=jid_proto("1555@s.whatsapp.net")
    )
    feed(
        client,
        _ev().UndecryptableMessageEv(
            Info=proto.MessageInfo(ID="U0", MessageSource=src), IsUnavailable=True
        ),
    )  # no ciphertext: not counted
    for n in range(3):
        feed(
            client,
            _ev().UndecryptableMessageEv(Info=proto.MessageInfo(ID=f"U{n + 1}", MessageSource=src)),
        )
    time.sleep(0.1)
    assert mgr.status("t1").state is S.CONNECTED  # 3 is the limit, not over it
    feed(client, _ev().UndecryptableMessageEv(Info=proto.MessageInfo(ID="U4", MessageSource=src)))
    status = mgr.wait_for("t1", S.FAILED, timeout=5)
    assert "wamgr clear-auth" in status.last_error
    assert status.jid == JID  # kept: the operator decides


def test_a_dial_failure_raised_by_connect_means_backoff(make_manager, fake_neonize):
    fake_neonize.script.dial_error = "failed to dial whatsapp web websocket: lookup failed"
    mgr = make_manager(transport=fake_neonize.transport)
    mgr.connect("t1")
    status = mgr.wait_for("t1", S.BACKOFF, timeout=5)
    assert "failed to dial whatsapp web websocket" in status.last_error
    assert fake_neonize.client().calls[-1] == "stop"  # the map entries were removed


def test_a_client_that_ends_without_an_event_closes_the_link(make_manager, fake_neonize):
    mgr = make_manager(transport=fake_neonize.transport)
    mgr.connect("t1")
    mgr.wait_for("t1", S.PAIRING, timeout=5)
    client = fake_neonize.client()
    client.stopped.set()  # Go's Neonize returned without saying why
    status = mgr.wait_for("t1", S.BACKOFF, timeout=5)
    assert "without an event" in status.last_error


def test_pairing_by_qr_stores_the_device_jid_then_connects(make_manager, fake_neonize):
    mgr = make_manager(transport=fake_neonize.transport)
    mgr.connect("t1")
    mgr.wait_for("t1", S.PAIRING, timeout=5)
    assert mgr.qr("t1") == "2@fake-qr,noise,identity,adv"
    client = fake_neonize.client()
    assert client.connect_args == (None, True)  # a new device, no JID
    _pair(client, JID)
    status = mgr.wait_for("t1", S.CONNECTED, timeout=5)
    assert status.jid == JID
    assert mgr.qr("t1") is None


def test_a_pair_code_is_asked_for_while_pairing(make_manager, fake_neonize):
    mgr = make_manager(transport=fake_neonize.transport)
    mgr.connect("t1")
    mgr.wait_for("t1", S.PAIRING, timeout=5)
    assert mgr.pair_code("t1", "+1 555 123 4567") == "ABCD-4567"
    assert "PairPhone" in fake_neonize.client().calls


@pytest.mark.parametrize(
    ("status", "state", "detail"),
    [
        ("timeout", S.LOGGED_OUT, "no phone scanned"),
        ("err-client-outdated", S.FAILED, "outdated"),
        ("err-scanned-without-multidevice", S.FAILED, "multi-device"),
        ("error", S.BACKOFF, "broke while pairing"),
    ],
)
def test_a_pairing_that_ends_badly(make_manager, fake_neonize, status, state, detail):
    mgr = make_manager(transport=fake_neonize.transport)
    mgr.connect("t1")
    mgr.wait_for("t1", S.PAIRING, timeout=5)
    client = fake_neonize.client()
    parked = login_status(client, status)
    result = mgr.wait_for("t1", state, timeout=5)
    assert detail in result.last_error
    assert client.calls[-1] == "stop"
    assert parked.is_alive()  # Go's thread never goes back to Go's unguarded map reads


def test_wamgr_pair_reports_a_qr_nobody_scanned(make_manager, fake_neonize):
    from wamgr import PairingFailed
    from wamgr.cli.pairing import pair_tenant

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


# --- helpers --------------------------------------------------------------------------------


def _pair(client, jid):
    """What Go does when the phone scans the QR: login status success, Device, PairSuccess,
    Connected (after whatsmeow's 515 reconnect)."""
    ev = _ev()
    thread = login_status(client, "success")
    thread.join(5)
    assert not thread.is_alive()
    feed(client, _proto().Device(JID=jid_proto(jid)))
    feed(client, ev.PairStatusEv(Status=ev.PairStatusEv.SUCCESS, ID=jid_proto(jid)))
    feed(client, ev.ConnectedEv(status=True))


def _store_jid(database_url, tenant_id, jid):
    from wamgr.status import Desired
    from wamgr.store.db import Database
    from wamgr.store.tenants import TenantStore

    db = Database(database_url)
    db.open()
    try:
        store = TenantStore(db)
        store.set_desired(tenant_id, Desired.CONNECTED)
        store.set_jid(tenant_id, jid)
    finally:
        db.close()


def _insert_device(database_url, jid):
    """A whatsmeow_device row (only the table this test needs; keys are random)."""
    import os

    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS whatsmeow_device (jid text PRIMARY KEY, lid text,"
            " registration_id bigint NOT NULL, noise_key bytea NOT NULL,"
            " identity_key bytea NOT NULL)"
        )
        conn.execute(
            "INSERT INTO whatsmeow_device (jid, registration_id, noise_key, identity_key)"
            " VALUES (%s, 1, %s, %s) ON CONFLICT DO NOTHING",
            (jid, os.urandom(32), os.urandom(32)),
        )
