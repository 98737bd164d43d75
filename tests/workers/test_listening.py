"""ListeningWorker, the base of every listener: after its connection is cut and the database
refuses it for a while, it warns once, says once that it listens again, tells its subclass
that notifications were missed, and hears the next one; a bug in a wait is logged with its
traceback and listening goes on; stop ends a long wait at once and closes the connection."""

from __future__ import annotations

import queue
import time

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from wamgr.store.db import Database
from wamgr.store.listen import ListenChannel
from wamgr.workers import listening
from wamgr.workers.listening import ListeningWorker

WAIT_S = 5.0
CHANNEL = "wamgr_test_listening"


def _notify(db: Database, payload: str) -> None:
    with db.connection() as conn:
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))


def _listening_pids(db: Database) -> set[int]:
    with db.connection() as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query = %s",
            (f"LISTEN {CHANNEL}",),
        ).fetchall()
    return {row[0] for row in rows}


class Recorder(ListeningWorker[ListenChannel]):
    """Queues every payload it hears (an empty one is stop's), each ``on_listening`` and each
    failure; raises ``bug`` once from its next ``listen``."""

    what = "test listener"

    def __init__(self, db: Database, database_url: str):
        super().__init__(
            "wamgr-test-listener",
            lambda: ListenChannel(database_url, CHANNEL, connect_timeout_s=WAIT_S),
            lambda: _notify(db, ""),
        )
        self.heard: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.opened: queue.SimpleQueue[bool] = queue.SimpleQueue()
        self.failures: list[Exception] = []
        self.bug: Exception | None = None

    def on_listening(self, reopened: bool) -> None:
        self.opened.put(reopened)

    def listen(self, channel: ListenChannel) -> None:
        bug, self.bug = self.bug, None
        if bug is not None:
            raise bug
        for payload in channel.payloads(3600.0):
            if self.stopping:
                return
            if payload:
                self.heard.put(payload)
                return  # one notification per iteration: the next one may raise

    def on_failure(self, exc: Exception) -> float:
        self.failures.append(exc)
        return super().on_failure(exc)


@pytest.fixture
def recorder(db: Database, database_url: str, monkeypatch):
    monkeypatch.setattr(listening, "RECONNECT_DELAY_S", 0.01)
    worker = Recorder(db, database_url)
    worker.start()
    assert worker.wait_listening(WAIT_S)
    assert worker.opened.get(timeout=WAIT_S) is False
    yield worker
    assert worker.stop(WAIT_S)


def test_after_an_outage_it_warns_once_listens_again_and_hears_the_next_notification(
    recorder: Recorder, db: Database, database_url: str, pg_server_url: str, logs, wait_until
):
    _notify(db, "before")
    assert recorder.heard.get(timeout=WAIT_S) == "before"
    (backend,) = _listening_pids(db)
    name = conninfo_to_dict(database_url)["dbname"]
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        try:
            admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
            # cut, then refused again and again (every 10 ms): one warning for all of them
            wait_until(lambda: len(recorder.failures) >= 5, WAIT_S, "five failed attempts")
            assert not recorder.wait_listening(0)
            _notify(db, "missed")  # nobody listens: this one is lost (hence on_listening)
        finally:
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')

    assert recorder.opened.get(timeout=WAIT_S) is True  # the subclass may read again
    assert recorder.wait_listening(WAIT_S)
    _notify(db, "after")
    assert recorder.heard.get(timeout=WAIT_S) == "after"
    assert recorder.heard.empty()
    assert _listening_pids(db) - {backend}
    warnings = [line for line in logs if line.startswith("WARNING test listener:")]
    assert len(warnings) == 1, warnings
    assert "listening again in 0.01 s" in warnings[0]
    recovered = [line.strip() for line in logs if line.startswith("INFO test listener:")]
    assert recovered == ["INFO test listener: listening again"]


def test_a_bug_in_a_wait_is_logged_with_its_traceback_and_listening_goes_on(
    recorder: Recorder, db: Database, logs
):
    recorder.bug = RuntimeError("a bug in listen")
    _notify(db, "wake")  # ends the current wait; the next one raises
    assert recorder.heard.get(timeout=WAIT_S) == "wake"

    assert recorder.opened.get(timeout=WAIT_S) is True
    _notify(db, "after")
    assert recorder.heard.get(timeout=WAIT_S) == "after"
    errors = [line for line in logs if line.startswith("ERROR test listener failed")]
    assert len(errors) == 1, errors
    assert "Traceback" in errors[0] and "RuntimeError: a bug in listen" in errors[0]


def test_stop_ends_an_hour_long_wait_at_once_and_closes_the_connection(
    recorder: Recorder, db: Database, wait_until
):
    wait_until(lambda: len(_listening_pids(db)) == 1, WAIT_S, "the LISTEN connection")
    started = time.monotonic()

    assert recorder.stop(WAIT_S)

    assert time.monotonic() - started < 2.0
    assert not recorder.wait_listening(0)
    wait_until(lambda: not _listening_pids(db), WAIT_S, "the LISTEN connection to close")
