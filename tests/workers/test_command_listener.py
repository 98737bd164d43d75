"""The command listener: a NOTIFY brings a command at once, failures are contained, the
listening connection comes back after it broke, and stop does not wait for the poll."""

from __future__ import annotations

import queue

import psycopg
import pytest

from wamgr.store.commands import Command, CommandStore
from wamgr.store.db import Database
from wamgr.workers import listening
from wamgr.workers.command_listener import CommandListener

WAIT_S = 5.0
#: A poll so long that only a notification can bring a command within a test.
NEVER_S = 3600.0


@pytest.fixture
def commands(db: Database) -> CommandStore:
    return CommandStore(db)


class Applied:
    """The ``apply`` callback: queues what it is given; raises for tenants named ``bad*``."""

    def __init__(self) -> None:
        self.calls: queue.SimpleQueue[tuple[str, Command]] = queue.SimpleQueue()

    def __call__(self, tenant_id: str, command: Command) -> None:
        self.calls.put((tenant_id, command))
        if tenant_id.startswith("bad"):
            raise RuntimeError(f"cannot {command} {tenant_id}")

    def next(self) -> tuple[str, Command]:
        return self.calls.get(timeout=WAIT_S)


def _listener(commands: CommandStore, url: str, applied: Applied, **kwargs) -> CommandListener:
    return CommandListener(commands, url, "inst-0", applied, poll_s=NEVER_S, **kwargs)


def _listening_pids(db: Database) -> set[int]:
    with db.connection() as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND query = 'LISTEN wamgr_commands'"
        ).fetchall()
    return {row[0] for row in rows}


def test_a_notified_command_is_applied_at_once_and_a_failing_one_is_contained(
    commands, database_url, logs
):
    applied = Applied()
    listener = _listener(commands, database_url, applied)
    listener.start()
    try:
        assert listener.wait_listening(WAIT_S)
        assert commands.send("bad1", Command.CONNECT, sender="cli", anyone=True) == "*"
        assert applied.next() == ("bad1", Command.CONNECT)
        commands.send("t1", Command.RECONNECT, sender="cli", anyone=True)
        assert applied.next() == ("t1", Command.RECONNECT)
    finally:
        assert listener.stop(WAIT_S)  # the poll is an hour: stop's NOTIFY ends the wait
    assert any("connect failed" in line and "cannot connect bad1" in line for line in logs)


def test_commands_sent_before_start_are_taken_on_the_first_look(commands, database_url):
    commands.send("t1", Command.DISCONNECT, sender="cli", anyone=True)
    applied = Applied()
    listener = _listener(commands, database_url, applied)
    listener.start()
    try:
        assert applied.next() == ("t1", Command.DISCONNECT)
    finally:
        assert listener.stop(WAIT_S)


def test_a_broken_listening_connection_is_opened_again(
    commands, database_url, db, monkeypatch, wait_until
):
    monkeypatch.setattr(listening, "RECONNECT_DELAY_S", 0.01)
    applied = Applied()
    listener = _listener(commands, database_url, applied)
    listener.start()
    try:
        assert listener.wait_listening(WAIT_S)
        wait_until(lambda: len(_listening_pids(db)) == 1, WAIT_S, "one LISTEN connection")
        (first,) = _listening_pids(db)
        with db.connection() as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (first,))
        wait_until(
            lambda: len(_listening_pids(db) - {first}) == 1, WAIT_S, "a new LISTEN connection"
        )
        commands.send("t1", Command.LOGOUT, sender="cli", anyone=True)
        assert applied.next() == ("t1", Command.LOGOUT)
    finally:
        assert listener.stop(WAIT_S)
    wait_until(lambda: not _listening_pids(db), WAIT_S, "the LISTEN connection to close")


def test_an_unreachable_database_is_waited_for_and_stop_still_ends_the_thread(
    commands, database_url, logs
):
    unreachable = psycopg.conninfo.make_conninfo(database_url, host="127.0.0.1", port=1)
    listener = _listener(commands, unreachable, Applied(), connect_timeout_s=1)
    listener.start()
    assert not listener.wait_listening(0.2)
    assert listener.stop(WAIT_S)
    assert any("not listening yet" in line for line in logs)


def test_a_listener_that_keeps_failing_warns_once_per_interval(
    commands, database_url, logs, monkeypatch, wait_until
):
    # Issue #13, defect 8: with the database stopped, about 77 warnings in 50 s.
    monkeypatch.setattr(listening, "RECONNECT_DELAY_S", 0.01)
    failures: list[Exception] = []
    original = CommandListener.on_failure

    def counted(self, exc: Exception) -> float:
        failures.append(exc)
        return original(self, exc)

    monkeypatch.setattr(CommandListener, "on_failure", counted)
    refused = psycopg.conninfo.make_conninfo(database_url, host="127.0.0.1", port=1)
    listener = _listener(commands, refused, Applied(), connect_timeout_s=1)
    listener.start()
    try:
        wait_until(lambda: len(failures) >= 20, WAIT_S, "twenty failed attempts")
    finally:
        assert listener.stop(WAIT_S)
    warnings = [line for line in logs if line.startswith("WARNING command listener:")]
    assert len(warnings) == 1, warnings
