"""The neonize event table (events.TABLE): what each signal a link gets is reported as, and
which state every event leads the tenant to.

The table tests call :func:`~wamgr.transport.neonize.events.translate` directly. The chain
tests build each event as its protobuf message and feed it to a real NeonizeLink as Go feeds
it (gate, start hold, teardown; Go's calls are played in Python by ``FakeGoClient`` in
conftest.py); the manager, actors and policy are real.
"""

from __future__ import annotations

import threading
import time

import pytest

from wamgr import InboundMessage, TenantState
from wamgr.policy import decide
from wamgr.transport.base import (
    Closed,
    CloseReason,
    Connected,
    MessageReceived,
    Paired,
    Qr,
    Undecryptable,
)
from wamgr.transport.neonize import events as nev
from wamgr.transport.neonize.lib import EVENT_TO_INT, E2EMessage

from .conftest import (
    JID,
    feed,
    insert_device,
    jid_proto,
    login_status,
    neonize_events,
    neonize_proto,
    store_jid,
)

S = TenantState
R = CloseReason
NOW = 1_700_000_000.0
FACTS = nev.LinkFacts(generation=7, jid=JID, now_s=NOW)


def _ev():
    return neonize_events()


def _proto():
    return neonize_proto()


def _failure(reason: str):
    return _proto().ConnectFailureReason.Value(reason)


# --- the table itself -------------------------------------------------------------------------


def test_every_neonize_event_is_in_the_table_or_listed_as_not_subscribed():
    subscribed, ignored = set(nev.SUBSCRIBED), set(nev.NOT_SUBSCRIBED)
    assert not subscribed & ignored
    # Device (code 0) is neonize's own business (client.me); every other event has a place.
    assert subscribed | ignored | {_proto().Device} == set(EVENT_TO_INT)


def test_every_signal_has_a_last_row_that_always_matches():
    last: dict[type, nev.Row] = {}
    for row in nev.TABLE:
        last[row.signal] = row
    assert all(row.when is None for row in last.values()), [
        row.signal.__name__ for row in last.values() if row.when is not None
    ]


def test_a_row_names_a_reason_exactly_when_it_closes():
    with pytest.raises(ValueError):
        nev.Row(nev.ConnectReturned, None, Closed)
    with pytest.raises(ValueError):
        nev.Row(nev.QrShown, None, Qr, R.NETWORK)


def _translate_cases():
    ev, proto = _ev(), _proto()
    src = proto.MessageSource
    peer = jid_proto("15559998888@s.whatsapp.net")
    broadcast = proto.JID(User="status", Server="broadcast")
    return [
        ("wamgr closes", nev.CloseAsked(do_logout=True), R.REQUESTED, "closed by wamgr"),
        ("no device keys", nev.DeviceMissing(JID), R.LOGGED_OUT, f"no keys for device {JID}"),
        ("connect raised", nev.ConnectRaised("dial tcp: i/o timeout"), R.DIAL_FAILED, "i/o"),
        ("connect raised, no text", nev.ConnectRaised(""), R.DIAL_FAILED, "without a message"),
        ("connect returned", nev.ConnectReturned(), R.NETWORK, "without an event"),
        ("login timeout", nev.LoginEnded("timeout"), R.PAIRING_TIMEOUT, "no phone scanned"),
        ("login other", nev.LoginEnded("err-new"), R.CONNECT_FAILURE, "pairing ended: err-new"),
        (
            "login unexpected state",
            nev.LoginEnded("err-unexpected-state"),
            R.CONNECT_FAILURE,
            "unexpected state",
        ),
        (
            "logged out, generic reason",
            ev.LoggedOutEv(Reason=_failure("GENERIC")),
            R.LOGGED_OUT,
            "401 logged out while connected",
        ),
        (
            "connect failure 401",
            ev.ConnectFailureEv(Reason=_failure("LOGGED_OUT")),
            R.LOGGED_OUT,
            "connect failure 401",
        ),
        (
            "connect failure 403",
            ev.ConnectFailureEv(Reason=_failure("MAIN_DEVICE_GONE"), Message="gone"),
            R.MAIN_DEVICE_GONE,
            "connect failure 403: gone",
        ),
        (
            "connect failure 405",
            ev.ConnectFailureEv(Reason=_failure("CLIENT_OUTDATED")),
            R.CLIENT_OUTDATED,
            "connect failure 405",
        ),
        (
            "connect failure 406",
            ev.ConnectFailureEv(Reason=_failure("UNKNOWN_LOGOUT")),
            R.UNKNOWN_LOGOUT,
            "connect failure 406",
        ),
        (
            "connect failure 501",
            ev.ConnectFailureEv(Reason=_failure("EXPERIMENTAL")),
            R.CONNECT_FAILURE,
            "connect failure 501",
        ),
        (
            "connect failure, text code in Raw",
            ev.ConnectFailureEv(
                Raw=proto.Node(Tag="failure", Attrs=[proto.NodeAttrs(name="reason", text="418")])
            ),
            R.CONNECT_FAILURE,
            "connect failure 418",
        ),
        ("ban, nothing said", ev.TemporaryBanEv(), R.TEMPORARY_BAN, "(reason not given)"),
        ("stream error, no code", ev.StreamErrorEv(), R.STREAM_ERROR, "(no code)"),
        (
            "keep-alive, never succeeded",
            ev.KeepAliveTimeoutEv(ErrorCount=2),
            R.KEEPALIVE_TIMEOUT,
            "last success 0 s ago",
        ),
        (
            "pair error, no text",
            ev.PairStatusEv(Status=ev.PairStatusEv.ERROR),
            R.CONNECT_FAILURE,
            "pairing failed: unknown",
        ),
        ("a status update", _message(src(Chat=broadcast, Sender=peer)), None, None),
    ]


def _message(source):
    info = _proto().MessageInfo(ID="M", MessageSource=source)
    return _ev().MessageEv(Info=info, Message=E2EMessage(conversation="text"))


@pytest.mark.parametrize(
    ("signal", "reason", "detail"),
    [case[1:] for case in _translate_cases()],
    ids=[case[0] for case in _translate_cases()],
)
def test_each_signal_closes_for_the_reason_of_its_row(signal, reason, detail):
    event = nev.translate(signal, FACTS)
    if reason is None:
        assert event is None
        return
    assert isinstance(event, Closed)
    assert (event.generation, event.reason) == (7, reason)
    assert detail in event.detail


def test_a_temporary_ban_carries_its_expiry_and_whatsapps_code():
    ev = _ev()
    ban = ev.TemporaryBanEv(Code=ev.TemporaryBanEv.BROADCAST_LIST, Expire=90)
    event = nev.translate(ban, FACTS)
    assert event == Closed(
        7, R.TEMPORARY_BAN, "402 temporary ban, code 106 (broadcast list)", ban_expires_in_s=90.0
    )
    assert nev.translate(ev.TemporaryBanEv(), FACTS).ban_expires_in_s is None


def test_signals_that_do_not_close_report_their_event():
    ev, proto = _ev(), _proto()
    src = proto.MessageSource(
        Chat=jid_proto("15559998888@s.whatsapp.net"),
        Sender=jid_proto("15559998888:3@s.whatsapp.net"),
    )
    info = proto.MessageInfo(ID="M1", MessageSource=src)
    paired = ev.PairStatusEv(Status=ev.PairStatusEv.SUCCESS, ID=jid_proto(JID))
    assert nev.translate(nev.QrShown("2@qr"), FACTS) == Qr(7, "2@qr")
    assert nev.translate(paired, FACTS) == Paired(7, JID)
    assert nev.translate(ev.ConnectedEv(status=True), FACTS) == Connected(7, JID)
    assert nev.translate(
        ev.MessageEv(Info=info, Message=E2EMessage(conversation="hi")), FACTS
    ) == MessageReceived(
        7, "M1", "15559998888@s.whatsapp.net", "hi", chat="15559998888@s.whatsapp.net"
    )
    assert nev.translate(ev.UndecryptableMessageEv(Info=info), FACTS) == Undecryptable(
        7, "M1", "15559998888@s.whatsapp.net"
    )
    for quiet in (
        nev.LoginEnded("success"),
        ev.KeepAliveRestoredEv(),
        ev.KeepAliveTimeoutEv(ErrorCount=1, LastSuccess=int(NOW) - 59),
        ev.UndecryptableMessageEv(Info=info, IsUnavailable=True),
        ev.ReceiptEv(),  # a receipt of no message (and no type wamgr reports)
    ):
        assert nev.translate(quiet, FACTS) is None, quiet


# --- the whole chain: event -> link -> tenant -> policy -> state ------------------------------


def test_a_pairing_timeout_parks_the_tenant_until_paired_again():
    decision = decide(CloseReason.PAIRING_TIMEOUT, attempt=0, uptime_s=0.0)
    assert decision.state is TenantState.LOGGED_OUT
    assert decision.reconnect_after_s is None
    assert decision.release_lease and not decision.clear_auth
    assert "wamgr pair" in decision.error


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


#: Rows the quick loop drives through a manager: one per end state (the rest: the full run).
_QUICK_ROWS = {"logged out, reason unset", "connect failure 503", "temporary ban 402"}


@pytest.mark.parametrize(
    ("message", "state", "detail"),
    [
        pytest.param(
            *case[1:], id=case[0], marks=() if case[0] in _QUICK_ROWS else pytest.mark.slow
        )
        for case in _close_cases()
    ],
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
    feed(client, message("C", "group", IsGroup=True))  # a group's: reported, is_group
    feed(client, message("D"))  # no content wamgr reports (see test_neonize_messages.py)
    feed(client, message("E", "via lid", sender=lid, alt=jid_proto("15557776666@s.whatsapp.net")))
    feed(client, message("LAST", "bye"))
    assert arrived.wait(5)
    assert [(m.message_id, m.sender, m.text) for m in inbox] == [
        ("A", "15559998888@s.whatsapp.net", "hello"),
        ("C", "15559998888@s.whatsapp.net", "group"),
        ("E", "15557776666@s.whatsapp.net", "via lid"),
        ("LAST", "15559998888@s.whatsapp.net", "bye"),
    ]


@pytest.mark.slow
def test_too_many_undecryptable_messages_mean_failed_with_the_clear_auth_hint(
    make_manager, fake_neonize, database_url
):
    proto = _proto()
    insert_device(database_url, JID)
    store_jid(database_url, "t1", JID)
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
