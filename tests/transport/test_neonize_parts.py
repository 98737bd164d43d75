"""The parts of the neonize transport that need no Go: store URLs, JIDs, the gate."""

from __future__ import annotations

import threading

import pytest

from wamgr import ConfigError
from wamgr.policy import decide
from wamgr.status import TenantState
from wamgr.transport.base import CloseReason
from wamgr.transport.neonize.auth import format_jid, parse_jid, store_url
from wamgr.transport.neonize.gate import GoGate, StartHold


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            "postgresql://postgres:@/wamgr?host=/tmp/pg",
            "postgresql://postgres:@/wamgr?host=/tmp/pg&application_name=wamgr-neonize",
        ),
        (
            "postgres://u:p@db:5432/x?sslmode=require&application_name=mine",
            "postgres://u:p@db:5432/x?sslmode=require&application_name=mine",
        ),
        (
            "user=postgres dbname=wamgr_t1 host=/tmp/wamgr-test-pg/pgdata",
            "postgres://postgres@/wamgr_t1?host=%2Ftmp%2Fwamgr-test-pg%2Fpgdata"
            "&application_name=wamgr-neonize",
        ),
        (
            "host=db.internal port=6432 user=wa password='p@ss w' dbname=auth",
            "postgres://wa:p%40ss%20w@db.internal:6432/auth?sslmode=prefer"
            "&application_name=wamgr-neonize",
        ),
    ],
)
def test_store_url_is_a_postgres_url_for_lib_pq(given, expected):
    assert store_url(given) == expected


def test_a_store_url_that_names_no_database_is_refused():
    with pytest.raises(ConfigError):
        store_url("not a conninfo at all")


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("15550001111:7@s.whatsapp.net", ("15550001111", 0, 7, "s.whatsapp.net")),
        ("15550001111@s.whatsapp.net", ("15550001111", 0, 0, "s.whatsapp.net")),
        ("15550001111.1:3@s.whatsapp.net", ("15550001111", 1, 3, "s.whatsapp.net")),
        ("123456789:2@lid", ("123456789", 0, 2, "lid")),
    ],
)
def test_jids_round_trip_in_whatsmeows_format(text, parts):
    assert parse_jid(text) == parts
    assert format_jid(*parts) == text


def test_a_malformed_jid_is_refused():
    with pytest.raises(ValueError, match="not a WhatsApp JID"):
        parse_jid("15550001111")


def test_a_pairing_timeout_parks_the_tenant_until_paired_again():
    decision = decide(CloseReason.PAIRING_TIMEOUT, attempt=0, uptime_s=0.0)
    assert decision.state is TenantState.LOGGED_OUT
    assert decision.reconnect_after_s is None
    assert decision.release_lease and not decision.clear_auth
    assert "wamgr pair" in decision.error


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


def test_a_waiting_writer_keeps_new_readers_out():
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
    _until(lambda: gate._writers_waiting == 1)
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


def _until(predicate, timeout: float = 5.0) -> None:
    pause = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        pause.wait(0.01)
    raise AssertionError("condition not met in time")
