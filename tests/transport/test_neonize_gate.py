"""gate.py: the readers-writer gate in front of neonize's Go core, and the start hold."""

from __future__ import annotations

import threading

import pytest

from wamgr.transport.neonize.gate import GoGate, StartHold


def test_readers_share_the_gate_and_a_writer_waits_for_them():
    gate = GoGate()
    order: list[str] = []
    inside = threading.Barrier(2, timeout=5)

    def reader(name: str) -> None:
        with gate.shared():
            inside.wait()  # both readers are in at once
            order.append(name)

    readers = [threading.Thread(target=reader, args=(f"r{i}",)) for i in range(2)]
    for thread in readers:
        thread.start()
    for thread in readers:
        thread.join(5)
    with gate.exclusive():
        order.append("w")
    assert sorted(order[:2]) == ["r0", "r1"] and order[2] == "w"


def test_a_waiting_writer_keeps_new_readers_out(wait_until):
    gate = GoGate()
    events: list[str] = []
    first_in = threading.Event()
    release_first = threading.Event()

    def first_reader() -> None:
        with gate.shared():
            first_in.set()
            release_first.wait(5)
            events.append("r1 out")

    def writer() -> None:
        with gate.exclusive():
            events.append("w")

    def late_reader() -> None:
        with gate.shared():
            events.append("r2")

    threads = [threading.Thread(target=first_reader)]
    threads[0].start()
    first_in.wait(5)
    threads.append(threading.Thread(target=writer))
    threads[1].start()
    wait_until(lambda: gate._writers_waiting == 1, what="the writer to wait")
    threads.append(threading.Thread(target=late_reader))
    threads[2].start()
    release_first.set()
    for thread in threads:
        thread.join(5)
    assert events == ["r1 out", "w", "r2"]


def test_a_start_hold_is_released_once_from_any_thread():
    gate = GoGate()
    hold = StartHold(gate)
    hold.take()
    assert gate.exclusive_held_for() is not None
    releasers = [threading.Thread(target=hold.release) for _ in range(4)]
    for thread in releasers:
        thread.start()
    for thread in releasers:
        thread.join(5)
    assert gate.exclusive_held_for() is None
    with gate.exclusive():  # and the gate works as before
        pass
    with pytest.raises(RuntimeError):
        gate.release_exclusive()


def test_with_shared_reads_off_every_call_is_exclusive():
    gate = GoGate(shared_reads=False)
    with gate.shared():
        assert gate.exclusive_held_for() is not None
