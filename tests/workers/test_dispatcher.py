"""The event dispatcher: events in order on its own thread, failing subscribers contained,
what was published before stop delivered."""

from __future__ import annotations

import queue
import threading

from wamgr.events import InboundMessage, ManagerEvent
from wamgr.workers.dispatcher import EventDispatcher

WAIT_S = 5.0


def _message(n: int) -> InboundMessage:
    return InboundMessage("t1", f"m{n}", "sender@s.whatsapp.net", f"text {n}")


def test_events_reach_every_subscriber_in_order_on_the_dispatcher_thread(logs):
    dispatcher = EventDispatcher(name="wamgr-test-events")
    got: queue.SimpleQueue[tuple[str, ManagerEvent]] = queue.SimpleQueue()

    def good(event: ManagerEvent) -> None:
        got.put((threading.current_thread().name, event))

    def bad(event: ManagerEvent) -> None:
        raise RuntimeError("a subscriber's bug")

    dispatcher.subscribe(bad)
    dispatcher.subscribe(good)
    dispatcher.start()
    try:
        for n in range(3):
            dispatcher.publish(_message(n))
        received = [got.get(timeout=WAIT_S) for _ in range(3)]
    finally:
        assert dispatcher.stop(WAIT_S)
    assert received == [("wamgr-test-events", _message(n)) for n in range(3)]
    assert sum("a subscriber's bug" in line for line in logs) == 3


def test_unsubscribed_callbacks_get_nothing_more():
    dispatcher = EventDispatcher()
    got: queue.SimpleQueue[ManagerEvent] = queue.SimpleQueue()
    unsubscribe = dispatcher.subscribe(got.put)
    dispatcher.start()
    try:
        dispatcher.publish(_message(1))
        assert got.get(timeout=WAIT_S) == _message(1)
        unsubscribe()
        unsubscribe()  # twice is harmless
        dispatcher.publish(_message(2))
    finally:
        assert dispatcher.stop(WAIT_S)
    assert got.empty()


def test_stop_delivers_what_was_published_before_it():
    dispatcher = EventDispatcher()
    entered = threading.Event()
    release = threading.Event()
    got: list[ManagerEvent] = []

    def slow(event: ManagerEvent) -> None:
        entered.set()
        assert release.wait(WAIT_S)
        got.append(event)

    dispatcher.subscribe(slow)
    dispatcher.start()
    dispatcher.publish(_message(1))
    assert entered.wait(WAIT_S)
    dispatcher.publish(_message(2))  # queued behind the slow delivery
    dispatcher.publish(_message(3))
    stopper = threading.Thread(target=dispatcher.stop, args=(WAIT_S,), name="test-stopper")
    stopper.start()
    release.set()
    stopper.join(WAIT_S)
    assert not dispatcher.alive
    assert got == [_message(1), _message(2), _message(3)]
