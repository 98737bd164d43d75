"""The simulated WhatsApp through its public face (SimWhatsApp), and so its state machine
(sim_core.py): pairing, resume, replacement, faults, dial control, traffic, threads.

The link's own promises are in test_sim_link.py, the socket records in test_sim_recorder.py
and the devices kept across restarts in test_sim_devices.py.
"""

from __future__ import annotations

import threading

import pytest

from wamgr.clock import VirtualClock
from wamgr.transport.base import (
    Closed,
    CloseReason,
    Connected,
    Link,
    MessageReceived,
    Paired,
    Qr,
    Transport,
    Undecryptable,
)
from wamgr.transport.sim import SimLink, SimNotConnected, SimWhatsApp, SocketRecord

from .conftest import PEER, Events, open_link, paired_link

# --- protocols and pairing -------------------------------------------------------------


def test_sim_is_a_transport_and_makes_links(sim: SimWhatsApp) -> None:
    assert isinstance(sim, Transport)
    assert isinstance(sim.create_link("t1", None, 1, Events()), Link)


def test_auto_pair_shows_qr_then_pairs_and_connects(sim: SimWhatsApp) -> None:
    link, events = open_link(sim, "t1", generation=7)

    qr, paired, connected = events.items
    assert isinstance(qr, Qr) and qr.code
    assert paired == Paired(7, "15550000001@s.whatsapp.net")
    assert connected == Connected(7, paired.jid)
    assert link.jid == paired.jid
    assert sim.accounts() == [paired.jid]
    assert sim.open_sockets(paired.jid) == 1
    assert sim.pending_pairings() == []


def test_each_pairing_creates_a_new_account_with_a_sequential_number(sim: SimWhatsApp) -> None:
    jids = [paired_link(sim, f"t{i}")[2] for i in range(3)]
    assert jids == [f"1555000000{i}@s.whatsapp.net" for i in (1, 2, 3)]
    assert sim.accounts() == jids


def test_manual_pairing_waits_for_a_scan() -> None:
    sim = SimWhatsApp()
    _, events = open_link(sim, "t1")
    _, other_events = open_link(sim, "t2")

    assert events.kinds() == [Qr]
    code = events.items[0].code
    other_code = other_events.items[0].code
    assert sim.pending_pairings() == [code, other_code]
    assert sim.open_sockets() == 0  # a pairing socket counts against no account

    jid = sim.scan(code)

    assert events.kinds() == [Qr, Paired, Connected]
    assert events.items[1] == Paired(1, jid)
    assert sim.accounts() == [jid]
    assert sim.open_sockets(jid) == 1
    assert sim.pending_pairings() == [other_code]


def test_scan_of_an_unknown_code_names_it() -> None:
    sim = SimWhatsApp()
    with pytest.raises(ValueError, match="2@nope"):
        sim.scan("2@nope")


def test_qr_codes_are_unique() -> None:
    sim = SimWhatsApp()
    codes = [open_link(sim, f"t{i}")[1].items[0].code for i in range(5)]
    assert len(set(codes)) == 5


def test_closing_a_pairing_link_withdraws_its_qr() -> None:
    sim = SimWhatsApp()
    link, events = open_link(sim, "t1")
    code = events.items[0].code

    link.close(do_logout=True)

    assert events.items[-1] == Closed(1, CloseReason.REQUESTED)
    assert sim.pending_pairings() == []
    assert sim.accounts() == []
    with pytest.raises(ValueError):
        sim.scan(code)


# --- resume and replacement -----------------------------------------------------------


def test_resume_by_jid_connects(sim: SimWhatsApp) -> None:
    first, _, jid = paired_link(sim)
    first.close(do_logout=False)

    _, events = open_link(sim, "t1", jid, generation=2)

    assert events.items == [Connected(2, jid)]
    assert sim.open_sockets(jid) == 1
    assert sim.logouts(jid) == 0


def test_resume_of_an_unknown_account_is_logged_out(sim: SimWhatsApp) -> None:
    _, events = open_link(sim, "t1", "15559999999@s.whatsapp.net")

    (closed,) = events.items
    assert isinstance(closed, Closed) and closed.reason is CloseReason.LOGGED_OUT
    assert closed.detail
    assert sim.open_sockets() == 0


def test_second_socket_replaces_the_first_and_both_were_counted(
    sim: SimWhatsApp, clock: VirtualClock
) -> None:
    _, old_events, jid = paired_link(sim)
    clock.advance(5)

    _, new_events = open_link(sim, "t1", jid, generation=2)

    assert old_events.items[-1] == Closed(1, CloseReason.REPLACED, "stream replaced (440 conflict)")
    assert new_events.items == [Connected(2, jid)]
    assert sim.max_concurrent_sockets(jid) == 2
    assert sim.max_concurrent_sockets() == 2
    assert sim.open_sockets(jid) == 1
    first, second = sim.sockets(jid)
    assert first == SocketRecord(first.socket_id, jid, "t1", 1000.0, 1005.0, CloseReason.REPLACED)
    assert second.opened_at == 1005.0 and second.closed_at is None
    assert second.close_reason is None and second.socket_id > first.socket_id


def test_socket_log_records_times_from_the_clock(sim: SimWhatsApp, clock: VirtualClock) -> None:
    link, _, jid = paired_link(sim)
    clock.advance(42)
    link.close(do_logout=False)

    (record,) = sim.sockets(jid)
    assert (record.opened_at, record.closed_at) == (1000.0, 1042.0)
    assert record.close_reason is CloseReason.REQUESTED
    assert record.tenant_id == "t1"


def test_unknown_jid_has_no_sockets(sim: SimWhatsApp) -> None:
    assert sim.sockets("nobody@s.whatsapp.net") == []
    assert sim.max_concurrent_sockets() == 0
    assert sim.max_concurrent_sockets("nobody@s.whatsapp.net") == 0
    assert sim.open_sockets("nobody@s.whatsapp.net") == 0


# --- server-side drops ----------------------------------------------------------------

DROP_REASONS = [
    ("network", CloseReason.NETWORK, False),
    ("keepalive_timeout", CloseReason.KEEPALIVE_TIMEOUT, False),
    ("stream_error", CloseReason.STREAM_ERROR, False),
    ("server_error", CloseReason.SERVER_ERROR, False),
    ("replaced", CloseReason.REPLACED, False),
    ("logged_out", CloseReason.LOGGED_OUT, True),
    ("main_device_gone", CloseReason.MAIN_DEVICE_GONE, True),
    ("unknown_logout", CloseReason.UNKNOWN_LOGOUT, True),
    ("temporary_ban", CloseReason.TEMPORARY_BAN, False),
    ("client_outdated", CloseReason.CLIENT_OUTDATED, False),
    ("bad_user_agent", CloseReason.BAD_USER_AGENT, False),
    ("connect_failure", CloseReason.CONNECT_FAILURE, False),
    ("corrupted_keys", CloseReason.CORRUPTED_KEYS, False),
]


@pytest.mark.parametrize(("reason", "expected", "unlinks"), DROP_REASONS)
def test_drop_maps_each_reason_and_unlinks_only_on_logouts(
    sim: SimWhatsApp, reason: str, expected: CloseReason, unlinks: bool
) -> None:
    _, events, jid = paired_link(sim)

    assert sim.drop(jid, reason, detail="boom") is True

    closed = events.items[-1]
    assert isinstance(closed, Closed)
    assert (closed.reason, closed.detail) == (expected, "boom")
    banned = expected is CloseReason.TEMPORARY_BAN
    assert closed.ban_expires_in_s == (3600.0 if banned else None)
    assert sim.open_sockets(jid) == 0
    assert sim.sockets(jid)[-1].close_reason is expected

    _, resumed = open_link(sim, "t1", jid, generation=2)
    first = resumed.items[0]
    if unlinks:
        assert isinstance(first, Closed) and first.reason is CloseReason.LOGGED_OUT
    else:
        assert first == Connected(2, jid)


def test_drop_without_detail_reports_the_usual_text(sim: SimWhatsApp) -> None:
    _, events, jid = paired_link(sim)
    sim.drop(jid, "server_error")
    assert events.closed()[0].detail == "503 service unavailable"


def test_temporary_ban_reports_its_expiry(sim: SimWhatsApp) -> None:
    _, events, jid = paired_link(sim)

    sim.drop(jid, "temporary_ban", ban_expires_in_s=120.0)

    closed = events.items[-1]
    assert isinstance(closed, Closed)
    assert (closed.reason, closed.ban_expires_in_s) == (CloseReason.TEMPORARY_BAN, 120.0)


def test_drop_of_an_unknown_reason_lists_the_allowed_ones(sim: SimWhatsApp) -> None:
    _, _, jid = paired_link(sim)
    with pytest.raises(ValueError, match=r"'requested'; allowed: network, keepalive_timeout,"):
        sim.drop(jid, "requested")
    assert sim.open_sockets(jid) == 1


def test_drop_with_nothing_open_returns_false(sim: SimWhatsApp) -> None:
    link, _, jid = paired_link(sim)
    link.close(do_logout=False)
    assert sim.drop(jid, "network") is False
    assert sim.drop("nobody@s.whatsapp.net", "network") is False


def test_logout_drop_while_offline_still_unlinks(sim: SimWhatsApp) -> None:
    link, _, jid = paired_link(sim)
    link.close(do_logout=False)

    assert sim.drop(jid, "logged_out") is False

    _, events = open_link(sim, "t1", jid, generation=2)
    assert events.closed()[0].reason is CloseReason.LOGGED_OUT


# --- logout and clear_auth ------------------------------------------------------------


def test_close_with_logout_unlinks_the_device(sim: SimWhatsApp) -> None:
    link, events, jid = paired_link(sim)

    link.close(do_logout=True)

    assert events.items[-1] == Closed(1, CloseReason.REQUESTED)
    assert sim.logouts(jid) == 1
    _, resumed = open_link(sim, "t1", jid, generation=2)
    (closed,) = resumed.items
    assert isinstance(closed, Closed) and closed.reason is CloseReason.LOGGED_OUT
    # the refused socket was opened and closed at once
    assert [r.close_reason for r in sim.sockets(jid)] == [
        CloseReason.REQUESTED,
        CloseReason.LOGGED_OUT,
    ]
    assert sim.open_sockets(jid) == 0


def test_close_without_logout_keeps_the_device(sim: SimWhatsApp) -> None:
    link, _, jid = paired_link(sim)
    link.close(do_logout=False)
    assert sim.logouts(jid) == 0
    assert open_link(sim, "t1", jid, 2)[1].items == [Connected(2, jid)]


def test_clear_auth_forgets_only_that_device(sim: SimWhatsApp) -> None:
    a, _, jid_a = paired_link(sim, "a")
    b, _, jid_b = paired_link(sim, "b")
    a.close(do_logout=False)
    b.close(do_logout=False)

    sim.clear_auth("a", jid_a)
    sim.clear_auth("a", None)
    sim.clear_auth("a", "nobody@s.whatsapp.net")

    assert open_link(sim, "a", jid_a, 2)[1].closed()[0].reason is CloseReason.LOGGED_OUT
    assert open_link(sim, "b", jid_b, 2)[1].items == [Connected(2, jid_b)]


# --- dial control ---------------------------------------------------------------------


def test_held_dials_park_until_released_in_order(sim: SimWhatsApp) -> None:
    old, _, jid = paired_link(sim)
    old.close(do_logout=False)
    sim.hold_dials()

    _, first_events = open_link(sim, "t1", jid, generation=2)
    _, second_events = open_link(sim, "t1", jid, generation=3)

    assert first_events.items == [] and second_events.items == []
    assert sim.parked_dials() == 2
    assert sim.open_sockets(jid) == 0
    assert len(sim.sockets(jid)) == 1

    assert sim.release_dials() == 2

    assert first_events.kinds() == [Connected, Closed]
    assert first_events.closed()[0].reason is CloseReason.REPLACED
    assert second_events.items == [Connected(3, jid)]
    assert sim.parked_dials() == 0
    # released: later dials go straight through
    _, third_events = open_link(sim, "t1", jid, generation=4)
    assert third_events.kinds() == [Connected]


def test_closing_a_parked_link_never_counts_a_socket(sim: SimWhatsApp) -> None:
    sim.hold_dials()
    link, events = open_link(sim, "t1")

    link.close(do_logout=True)

    assert events.items == [Closed(1, CloseReason.REQUESTED)]
    assert sim.parked_dials() == 0
    assert sim.release_dials() == 0
    assert events.items == [Closed(1, CloseReason.REQUESTED)]
    assert sim.accounts() == []
    assert sim.max_concurrent_sockets() == 0


def test_fail_dials_fails_the_next_n_without_a_socket(sim: SimWhatsApp) -> None:
    _, _, jid = paired_link(sim)
    sim.drop(jid, "network")
    sim.fail_dials(2)

    results = [open_link(sim, "t1", jid, generation=g)[1] for g in (2, 3, 4)]

    refused = "dial tcp: connection refused"
    assert results[0].items == [Closed(2, CloseReason.DIAL_FAILED, refused)]
    assert results[1].items == [Closed(3, CloseReason.DIAL_FAILED, refused)]
    assert results[2].kinds() == [Connected]
    assert len(sim.sockets(jid)) == 2


def test_fail_dials_takes_a_detail(sim: SimWhatsApp) -> None:
    sim.fail_dials(1, detail="no route to host")
    _, events = open_link(sim, "t1")
    assert events.items == [Closed(1, CloseReason.DIAL_FAILED, "no route to host")]
    assert sim.accounts() == []


def test_dial_attempts_count_open_calls(sim: SimWhatsApp) -> None:
    sim.fail_dials(1)
    open_link(sim, "a")
    open_link(sim, "a", generation=2)
    open_link(sim, "b")
    sim.create_link("c", None, 1, Events())  # built, never opened

    assert sim.dial_attempts() == 3
    assert sim.dial_attempts("a") == 2
    assert sim.dial_attempts("b") == 1
    assert sim.dial_attempts("c") == 0


def test_closed_simulator_fails_dials_without_events(clock: VirtualClock) -> None:
    sim = SimWhatsApp(auto_pair=True, clock=clock)
    link, events, _ = paired_link(sim)
    sim.hold_dials()
    parked, parked_events = open_link(sim, "t2")

    sim.close()

    assert events.kinds() == [Qr, Paired, Connected]
    assert parked_events.items == []
    assert sim.parked_dials() == 0
    _, late = open_link(sim, "t3")
    assert late.items == [Closed(1, CloseReason.DIAL_FAILED, "simulator closed")]
    # links still report their one Closed when the manager closes them
    link.close(do_logout=False)
    parked.close(do_logout=False)
    assert events.closed() == [Closed(1, CloseReason.REQUESTED)]
    assert parked_events.items == [Closed(1, CloseReason.REQUESTED)]


# --- rogue clients ----------------------------------------------------------------------


def test_rogue_connect_replaces_the_wamgr_socket(sim: SimWhatsApp) -> None:
    _, events, jid = paired_link(sim)

    sim.connect_rogue(jid)

    assert events.items[-1] == Closed(1, CloseReason.REPLACED, "stream replaced (440 conflict)")
    assert sim.max_concurrent_sockets(jid) == 2
    assert sim.open_sockets(jid) == 1
    assert sim.sockets(jid)[-1].tenant_id is None

    assert sim.disconnect_rogue(jid) is True
    assert sim.disconnect_rogue(jid) is False
    assert sim.open_sockets(jid) == 0
    assert sim.sockets(jid)[-1].close_reason is CloseReason.REQUESTED


def test_wamgr_socket_replaces_a_rogue_silently(sim: SimWhatsApp) -> None:
    link, _, jid = paired_link(sim)
    link.close(do_logout=False)
    sim.connect_rogue(jid)

    _, events = open_link(sim, "t1", jid, generation=2)

    assert events.items == [Connected(2, jid)]
    assert sim.sockets(jid)[1].close_reason is CloseReason.REPLACED
    assert sim.disconnect_rogue(jid) is False


def test_rogue_needs_an_account(sim: SimWhatsApp) -> None:
    with pytest.raises(ValueError, match="nobody"):
        sim.connect_rogue("nobody@s.whatsapp.net")


# --- traffic ------------------------------------------------------------------------------


def test_inbound_delivers_and_redelivers(sim: SimWhatsApp) -> None:
    _, events, jid = paired_link(sim)

    message_id = sim.inbound(jid, PEER, "hello")
    again = sim.inbound(jid, PEER, "hello", message_id=message_id)
    other = sim.inbound(jid, PEER, "second")

    assert again == message_id != other
    assert events.items[3:] == [
        MessageReceived(1, message_id, PEER, "hello"),
        MessageReceived(1, message_id, PEER, "hello"),
        MessageReceived(1, other, PEER, "second"),
    ]


def test_undecryptable_delivers(sim: SimWhatsApp) -> None:
    _, events, jid = paired_link(sim)

    message_id = sim.undecryptable(jid, sender=PEER)
    given = sim.undecryptable(jid, message_id="X1")

    assert given == "X1"
    assert events.items[3] == Undecryptable(1, message_id, PEER)
    last = events.items[4]
    assert isinstance(last, Undecryptable) and last.message_id == "X1"


def test_traffic_needs_an_open_socket(sim: SimWhatsApp) -> None:
    link, _, jid = paired_link(sim)
    link.close(do_logout=False)

    with pytest.raises(SimNotConnected, match=jid):
        sim.inbound(jid, PEER, "hello")
    with pytest.raises(SimNotConnected, match=jid):
        sim.undecryptable(jid)
    with pytest.raises(SimNotConnected):
        sim.inbound("nobody@s.whatsapp.net", PEER, "hello")


def test_send_text_records_messages_with_unique_ids(sim: SimWhatsApp) -> None:
    link, _, jid = paired_link(sim)

    first = link.send_text(PEER, "one")
    second = link.send_text(PEER, "two")

    assert first != second
    assert sim.sent_messages(jid) == [(PEER, "one", first), (PEER, "two", second)]
    assert sim.sent_messages("nobody@s.whatsapp.net") == []


def test_presence_and_messages_are_recorded_in_the_order_they_were_shown(
    sim: SimWhatsApp,
) -> None:
    link, _, jid = paired_link(sim)

    link.send_presence(PEER, "composing")
    sent = link.send_text(PEER, "one")
    link.close(do_logout=False)

    assert sim.activity(jid) == [("presence", PEER, "composing"), ("message", PEER, sent)]
    with pytest.raises(SimNotConnected):
        link.send_presence(PEER, "composing")
    assert sim.activity("nobody@s.whatsapp.net") == []


def test_send_text_when_not_connected_says_why() -> None:
    sim = SimWhatsApp()
    pairing, _ = open_link(sim, "t1")
    with pytest.raises(SimNotConnected, match=r"'t1' \(generation 1\) is pairing, not connected"):
        pairing.send_text(PEER, "hi")
    assert isinstance(SimNotConnected("x"), RuntimeError)


# --- threads ------------------------------------------------------------------


def test_threads_on_distinct_accounts_never_share_a_socket(sim: SimWhatsApp) -> None:
    jids = []
    for i in range(8):
        link, _, jid = paired_link(sim, f"t{i}")
        link.close(do_logout=False)
        jids.append(jid)
    start = threading.Barrier(8)
    failures: list[str] = []

    def churn(tenant: str, jid: str) -> None:
        start.wait(timeout=10)
        for generation in range(2, 102):
            link, events = open_link(sim, tenant, jid, generation)
            link.send_text(PEER, "ping")
            link.close(do_logout=False)
            expected = [Connected(generation, jid), Closed(generation, CloseReason.REQUESTED)]
            if events.items != expected:
                failures.append(f"{tenant}: {events.items}")

    threads = [
        threading.Thread(target=churn, args=(f"t{i}", jid), name=f"churn-{i}")
        for i, jid in enumerate(jids)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert not any(t.is_alive() for t in threads)
    assert failures == []
    assert sim.max_concurrent_sockets() == 1
    assert sim.open_sockets() == 0
    assert all(len(sim.sockets(jid)) == 101 for jid in jids)


def test_threads_racing_on_one_account_leave_one_socket_and_ordered_events(
    sim: SimWhatsApp,
) -> None:
    first, _, jid = paired_link(sim)
    first.close(do_logout=False)
    start = threading.Barrier(8)
    results: list[tuple[SimLink, Events]] = []
    results_lock = threading.Lock()

    def race(worker: int) -> None:
        start.wait(timeout=10)
        for n in range(50):
            opened = open_link(sim, f"w{worker}", jid, generation=worker * 1000 + n)
            with results_lock:
                results.append(opened)

    threads = [threading.Thread(target=race, args=(i,), name=f"race-{i}") for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert not any(t.is_alive() for t in threads)
    assert sim.open_sockets(jid) == 1
    assert sim.max_concurrent_sockets(jid) == 2
    still_open = [events for _, events in results if not events.closed()]
    assert len(still_open) == 1
    for _, events in results:
        kinds = events.kinds()
        assert kinds in ([Connected], [Connected, Closed]), kinds


def test_stats_count_accounts_and_sockets(sim: SimWhatsApp) -> None:
    assert sim.stats() == {"max_concurrent_sockets": 0, "accounts": 0, "open_sockets": 0}
    _, _, jid = paired_link(sim, "a")
    paired_link(sim, "b")
    sim.connect_rogue(jid)

    assert sim.stats() == {"max_concurrent_sockets": 2, "accounts": 2, "open_sockets": 2}


def test_collisions_count_every_socket_that_opened_beside_another():
    sim = SimWhatsApp(auto_pair=True)
    events: list = []
    sim.create_link("t1", None, 1, events.append).open()
    jid = sim.accounts()[0]
    assert sim.collisions(jid) == 0
    sim.connect_rogue(jid)
    sim.create_link("t1", jid, 2, events.append).open()  # replaces the rogue
    assert sim.collisions(jid) == 2
    assert sim.max_concurrent_sockets(jid) == 2
