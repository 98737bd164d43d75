"""The socket records: open and close times per account, and the most that overlapped."""

from __future__ import annotations

from wamgr.clock import VirtualClock
from wamgr.transport.base import CloseReason
from wamgr.transport.sim_recorder import SocketRecord, SocketRecorder

A = "15550000001@s.whatsapp.net"
B = "15550000002@s.whatsapp.net"


def test_a_socket_is_recorded_with_its_times_from_the_clock(clock: VirtualClock) -> None:
    recorder = SocketRecorder(clock)

    sock, older = recorder.open(A, None)
    clock.advance(42)
    recorder.close(sock, CloseReason.NETWORK)

    assert older == []
    assert recorder.records(A) == [
        SocketRecord(sock.socket_id, A, None, 1000.0, 1042.0, CloseReason.NETWORK)
    ]
    assert recorder.open_count() == recorder.open_count(A) == 0
    assert recorder.max_concurrent(A) == 1


def test_a_second_socket_of_an_account_counts_as_overlapping_until_closed(
    clock: VirtualClock,
) -> None:
    recorder = SocketRecorder(clock)
    first, _ = recorder.open(A, None)
    recorder.open(B, None)

    second, older = recorder.open(A, None)

    assert older == [first]  # the caller replaces these
    assert recorder.open_of(A) == [first, second]
    assert (recorder.max_concurrent(A), recorder.max_concurrent(B)) == (2, 1)
    assert recorder.max_concurrent() == 2
    assert recorder.collisions(A) == 1 and recorder.collisions(B) == 0
    assert recorder.open_count() == 3

    recorder.close(first, CloseReason.REPLACED)

    assert recorder.open_of(A) == [second]
    assert recorder.max_concurrent(A) == 2  # the most ever, not the most now
    assert [r.close_reason for r in recorder.records(A)] == [CloseReason.REPLACED, None]
    assert second.socket_id > first.socket_id


def test_sockets_opened_one_after_another_never_overlap(clock: VirtualClock) -> None:
    recorder = SocketRecorder(clock)
    for _ in range(5):
        sock, older = recorder.open(A, None)
        assert older == []
        recorder.close(sock, CloseReason.REQUESTED)

    assert recorder.max_concurrent() == recorder.max_concurrent(A) == 1
    assert recorder.collisions(A) == 0
    assert len(recorder.records(A)) == 5


def test_an_unknown_account_has_nothing_recorded(clock: VirtualClock) -> None:
    recorder = SocketRecorder(clock)
    assert recorder.records(A) == [] and recorder.open_of(A) == []
    assert recorder.max_concurrent(A) == recorder.max_concurrent() == 0
    assert recorder.collisions(A) == recorder.open_count(A) == 0
