"""A link to the simulator keeps the Link promises: exactly one Closed and nothing after it,
one open per link, and events delivered in order, outside the lock, one callback at a time."""

from __future__ import annotations

import threading

import pytest

from wamgr.transport.base import Closed, CloseReason, Connected, LinkEvent, Paired, Qr
from wamgr.transport.sim import SimLink, SimNotConnected, SimWhatsApp

from .conftest import PEER, Events, open_link, paired_link

# --- the one-Closed rule --------------------------------------------------------------


def test_a_link_reports_exactly_one_closed_and_nothing_after(sim: SimWhatsApp) -> None:
    link, events, jid = paired_link(sim)

    sim.drop(jid, "network")
    link.close(do_logout=True)
    link.close(do_logout=False)
    sim.drop(jid, "network")

    assert events.kinds() == [Qr, Paired, Connected, Closed]
    assert sim.logouts(jid) == 0  # the socket was already gone
    with pytest.raises(SimNotConnected):
        link.send_text(PEER, "hi")


def test_a_replaced_link_gets_nothing_more(sim: SimWhatsApp) -> None:
    old, old_events, jid = paired_link(sim)
    open_link(sim, "t1", jid, generation=2)

    old.close(do_logout=True)
    sim.inbound(jid, PEER, "hello")

    assert old_events.kinds() == [Qr, Paired, Connected, Closed]
    assert sim.logouts(jid) == 0


def test_open_twice_raises(sim: SimWhatsApp) -> None:
    link, _ = open_link(sim, "t1")
    with pytest.raises(RuntimeError, match="already"):
        link.open()


def test_close_before_open_reports_closed_and_forbids_open(sim: SimWhatsApp) -> None:
    events = Events()
    link = sim.create_link("t1", None, 1, events)

    link.close(do_logout=False)
    link.close(do_logout=False)

    assert events.items == [Closed(1, CloseReason.REQUESTED)]
    with pytest.raises(RuntimeError):
        link.open()
    assert sim.dial_attempts() == 0


# --- callbacks ----------------------------------------------------------------------------


def test_callbacks_run_outside_the_lock(sim: SimWhatsApp) -> None:
    stuck: list[bool] = []

    def on_event(event: LinkEvent) -> None:
        probe = threading.Thread(target=sim.stats, name="lock-probe")
        probe.start()
        probe.join(timeout=5)
        stuck.append(probe.is_alive())

    sim.create_link("t1", None, 1, on_event).open()

    assert stuck == [False, False, False]


def test_a_callback_may_close_its_own_link_and_order_holds(sim: SimWhatsApp) -> None:
    events = Events()
    holder: list[SimLink] = []

    def on_event(event: LinkEvent) -> None:
        events(event)
        if isinstance(event, Qr):
            holder[0].close(do_logout=False)

    link = sim.create_link("t1", None, 1, on_event)
    holder.append(link)
    link.open()

    # the pairing had already happened when the callback ran; the close comes after it
    assert events.kinds() == [Qr, Paired, Connected, Closed]
    assert sim.open_sockets() == 0


def test_a_failing_callback_is_contained(sim: SimWhatsApp) -> None:
    seen: list[LinkEvent] = []

    def on_event(event: LinkEvent) -> None:
        seen.append(event)
        raise RuntimeError("subscriber bug")

    link = sim.create_link("t1", None, 1, on_event)
    link.open()
    link.close(do_logout=False)

    assert [type(e) for e in seen] == [Qr, Paired, Connected, Closed]
