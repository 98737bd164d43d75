"""Shared fixtures: a real PostgreSQL, one fresh database per test, managers that stop.

PostgreSQL is the embedded one (started once per session in a temporary folder) unless
WAMGR_TEST_DATABASE_URL names a server; each test gets its own database, cloned from a
migrated template, and dropped afterwards.
"""

from __future__ import annotations

import faulthandler
import itertools
import os
import queue
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from loguru import logger
from psycopg.conninfo import make_conninfo

from wamgr import Config, ConnectionManager
from wamgr.clock import VirtualClock
from wamgr.store import embedded
from wamgr.store.db import Database
from wamgr.transport.sim import SimWhatsApp

# tests/dbproxy.py is imported by name from fixtures, tests and bench scripts alike.
sys.path.insert(0, str(Path(__file__).parent))
from dbproxy import FreezableProxy

logger.enable("wamgr")  # importing wamgr turned its logs off; tests read them (``logs``)

_TEMPLATE = "wamgr_test_template"
_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """URL of a database on the test PostgreSQL server (used to create per-test databases).

    The embedded server lives in its own temporary folder, not in pytest's basetemp: pytest
    deletes old basetemps when another session starts, which would pull the data folder
    from under a session still running.
    """
    url = os.environ.get("WAMGR_TEST_DATABASE_URL")
    if url:
        yield url
        return
    home = Path(tempfile.mkdtemp(prefix="wamgr-test-pg-"))
    try:
        yield embedded.acquire(home)
    finally:
        embedded.release(home)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def template_db(pg_server_url: str) -> str:
    """A database with every migration applied, cloned for each test."""
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{_TEMPLATE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{_TEMPLATE}"')
    db = Database(make_conninfo(pg_server_url, dbname=_TEMPLATE), min_size=1, max_size=2)
    db.open()
    db.migrate()
    db.close()
    return _TEMPLATE


class FreshDatabases:
    """Databases cloned from the template, made ahead and dropped behind on one thread.

    A test takes a database that is already there and gives it back when it is done; the
    thread makes the next ones and drops the used ones meanwhile, so no test waits for a
    CREATE or DROP DATABASE (about 0.1 s each): the server works while the test runs.
    """

    #: Databases kept ready.
    AHEAD = 2
    #: Seconds a test waits for its database before it fails.
    TAKE_TIMEOUT_S = 60.0

    def __init__(self, server_url: str, template: str) -> None:
        self._server_url = server_url
        self._template = template
        self._ready: queue.Queue[str | Exception] = queue.Queue()
        self._jobs: queue.Queue[str | None] = queue.Queue()  # "" makes one, a name drops it
        self._failures: list[Exception] = []
        self._thread = threading.Thread(target=self._run, name="test-databases", daemon=True)
        for _ in range(self.AHEAD):
            self._jobs.put("")
        self._thread.start()

    def take(self) -> str:
        """The name of a fresh database for one test; the next one is started at once."""
        self._jobs.put("")
        made = self._ready.get(timeout=self.TAKE_TIMEOUT_S)
        if isinstance(made, Exception):
            raise made
        return made

    def give_back(self, name: str) -> None:
        """Drop ``name`` (on the thread; its connections are ended first)."""
        self._jobs.put(name)

    def close(self) -> None:
        """Drop every database made here; raise the first drop that failed."""
        self._jobs.put(None)
        self._thread.join(self.TAKE_TIMEOUT_S)
        while not self._ready.empty():
            made = self._ready.get_nowait()
            if isinstance(made, str):
                self._drop(made)
        if self._failures:
            raise self._failures[0]

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                if job:
                    self._drop(job)
                else:
                    self._ready.put(self._make())
            except Exception as exc:  # a failed make fails the test that takes it
                if job:
                    self._failures.append(exc)
                else:
                    self._ready.put(exc)

    def _make(self) -> str:
        name = f"wamgr_t{os.getpid()}_{next(_counter)}"
        with psycopg.connect(self._server_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self._template}"')
        return name

    def _drop(self, name: str) -> None:
        with psycopg.connect(self._server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def fresh_databases(pg_server_url: str, template_db: str) -> Iterator[FreshDatabases]:
    """Makes and drops the per-test databases (see FreshDatabases)."""
    databases = FreshDatabases(pg_server_url, template_db)
    yield databases
    databases.close()


@pytest.fixture
def database_url(pg_server_url: str, fresh_databases: FreshDatabases) -> Iterator[str]:
    """A fresh, migrated database of this test's own."""
    name = fresh_databases.take()
    yield make_conninfo(pg_server_url, dbname=name)
    fresh_databases.give_back(name)


@pytest.fixture
def db_proxy(database_url: str) -> Iterator[FreezableProxy]:
    """A proxy in front of this test's database that the test can freeze (a partition
    without a reset) and thaw; connect through ``db_proxy.database_url``.

    Request it before ``make_manager`` so that it outlives the managers it serves: they are
    stopped first, and it is thawed before that whatever the test did.
    """
    proxy = FreezableProxy.for_database(database_url).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """This test's database as a pool (room for the concurrency tests: 40 connections)."""
    database = Database(database_url, min_size=1, max_size=40)
    database.open()
    yield database
    database.close()


@pytest.fixture
def clock() -> VirtualClock:
    """A clock that moves only when the test advances it."""
    return VirtualClock()


@pytest.fixture
def sim(clock: VirtualClock) -> SimWhatsApp:
    """A simulated WhatsApp that pairs new devices at once."""
    return SimWhatsApp(auto_pair=True, clock=clock)


ManagerFactory = Callable[..., ConnectionManager]

WaitUntil = Callable[..., None]


@pytest.fixture
def wait_until() -> WaitUntil:
    """``wait_until(predicate, timeout=5)``: poll a condition another thread or process makes
    true (a database row, a socket in the simulator); fail with ``what`` on timeout.
    """

    def wait(predicate: Callable[[], object], timeout: float = 5.0, what: str = "") -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return
            time.sleep(0.02)
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what or predicate}")

    return wait


@pytest.fixture
def make_manager(
    database_url: str, sim: SimWhatsApp, clock: VirtualClock, tmp_path: Path
) -> Iterator[ManagerFactory]:
    """Start managers on this test's database; every one is stopped at the end."""
    started: list[ConnectionManager] = []

    def make(**overrides: object) -> ConnectionManager:
        settings: dict[str, object] = {
            "database_url": database_url,
            "home": tmp_path / "home",
            "transport": sim,
            "instance_id": f"inst-{len(started)}",
            "clock": clock,
            "claim_interval_s": 3600.0,
            # Tests jump the virtual clock by hours; a lease deadline shorter than a jump
            # would (rightly) fence the tenant, as for a paused process. Lease tests set
            # their own timings.
            "lease_ttl_s": 1e6,
            "renew_deadline_s": 5e5,
            "renew_interval_s": 1e5,
        }
        settings.update(overrides)
        manager = ConnectionManager(Config(**settings)).start()  # type: ignore[arg-type]
        started.append(manager)
        return manager

    yield make
    for manager in reversed(started):
        manager.stop()


@pytest.fixture
def mgr(make_manager: ManagerFactory) -> ConnectionManager:
    """One manager on the simulator, with a virtual clock."""
    return make_manager()


@pytest.fixture
def thread_baseline() -> Iterator[Callable[[], set[str]]]:
    """A function listing threads started since the test began that are still alive."""
    before = {t.ident for t in threading.enumerate()}

    def leftover() -> set[str]:
        return {t.name for t in threading.enumerate() if t.ident not in before and t.is_alive()}

    return leftover


@pytest.fixture
def logs() -> Iterator[list[str]]:
    """Every loguru record logged during the test, as ``"LEVEL message"`` with its traceback
    if any."""
    lines: list[str] = []
    sink = logger.add(lines.append, format="{level} {message}", level="DEBUG", catch=False)
    yield lines
    logger.remove(sink)


#: Seconds the session waits at its end for leftover non-daemon threads before it fails.
LEFTOVER_THREAD_GRACE_S = 10.0


_exit_status = [0]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remember the run's exit status for :func:`pytest_unconfigure`."""
    _exit_status[0] = int(exitstatus)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Fail loudly, with every thread's stack, if a non-daemon thread outlives the suite.

    Such a thread (an actor or worker some test did not stop) would keep the interpreter from
    exiting: CI would hang silently until its time limit. Here, after pytest has printed its
    summary, it ends the run with the run's own exit status (3 if that was 0) and the stacks
    that show who started the thread.
    """
    deadline = time.monotonic() + LEFTOVER_THREAD_GRACE_S
    while True:
        leftover = [
            t
            for t in threading.enumerate()
            if t is not threading.main_thread() and not t.daemon and t.is_alive()
        ]
        if not leftover or time.monotonic() > deadline:
            break
        leftover[0].join(0.2)
    if not leftover:
        return
    names = ", ".join(sorted(t.name for t in leftover))
    sys.stderr.write(f"\nnon-daemon threads still alive after the suite: {names}\n")
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    sys.stderr.flush()
    os._exit(_exit_status[0] or 3)
