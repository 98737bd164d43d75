"""Shared fixtures: a real PostgreSQL, one fresh database per test, managers that stop.

PostgreSQL is the embedded one (one per pytest process, in a temporary folder; see
TestServer) unless WAMGR_TEST_DATABASE_URL names a server; each test gets its own database,
cloned from a migrated template and recycled afterwards (see FreshDatabases).
"""

from __future__ import annotations

import faulthandler
import gc
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

# tests/dbproxy.py (and media_server.py) are imported by name from fixtures, tests and bench
# scripts alike.
sys.path.insert(0, str(Path(__file__).parent))
from dbproxy import FreezableProxy
from media_server import MediaServer

logger.enable("wamgr")  # importing wamgr turned its logs off; tests read them (``logs``)

#: The migrated template (one per pytest-xdist worker: they may share a server).
_TEMPLATE = "wamgr_test_template" + os.environ.get("PYTEST_XDIST_WORKER", "")
_counter = itertools.count()


class TestServer:
    """The test PostgreSQL server (of this process) with the migrated template.

    It is the embedded one unless WAMGR_TEST_DATABASE_URL names a server. A run of the whole
    suite starts it on a thread while the tests are being collected (initdb and the server
    are other processes: on two cores they take no time from the collection); other runs
    start it when a test first needs it. It lives in its own temporary folder, not in
    pytest's basetemp: pytest deletes old basetemps when another session starts, which
    would pull the data folder from under a session still running.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # held while starting and stopping
        self._home: Path | None = None
        self._url: str | None = None
        self._failure: BaseException | None = None

    def start_soon(self) -> None:
        """Start it on a thread."""
        threading.Thread(target=self._ensure, name="test-postgres", daemon=True).start()

    def url(self) -> str:
        """The server's URL, once it and the template are ready (started now if not yet)."""
        self._ensure()
        if self._failure is not None:
            raise self._failure
        assert self._url is not None
        return self._url

    def stop(self) -> None:
        """Stop the embedded server (if this process started one) and delete its folder."""
        with self._lock:
            if self._home is not None:
                embedded.release(self._home)
                shutil.rmtree(self._home, ignore_errors=True)
                self._home = None

    def _ensure(self) -> None:
        with self._lock:
            if self._url is not None or self._failure is not None:
                return
            try:
                url = os.environ.get("WAMGR_TEST_DATABASE_URL")
                if not url:
                    self._home = Path(tempfile.mkdtemp(prefix="wamgr-test-pg-"))
                    url = embedded.acquire(self._home)
                    _no_durability(url)
                _make_template(url)
                self._url = url
            except Exception as exc:  # raised to every test that needs the server
                self._failure = exc


_SERVER = TestServer()


def pytest_configure(config: pytest.Config) -> None:
    """A run of the whole suite (no paths given) starts the server while collecting; not a
    pytest-xdist controller (its workers run the tests) nor a --collect-only."""
    whole_suite = config.args_source == pytest.Config.ArgsSource.TESTPATHS
    controller = bool(config.getoption("numprocesses", None)) and not hasattr(config, "workerinput")
    if whole_suite and not controller and not config.option.collectonly:
        _SERVER.start_soon()


@pytest.fixture(scope="session", autouse=True)
def _test_server_stops() -> Iterator[None]:
    """Stop the test server after the last test (its logs then go with that test's)."""
    yield
    _SERVER.stop()


@pytest.fixture(scope="session")
def pg_server_url(_test_server_stops: None) -> str:
    """URL of a database on the test PostgreSQL server (used to create per-test databases)."""
    return _SERVER.url()


def _no_durability(server_url: str) -> None:
    """Turn off flushing to disk on the test suite's own throw-away server (its data folder is
    deleted after the run): creating, emptying and dropping databases gets several times
    cheaper. Never done to a server named by WAMGR_TEST_DATABASE_URL."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        for setting in ("fsync", "full_page_writes", "synchronous_commit"):
            conn.execute(f"ALTER SYSTEM SET {setting} = off")
        conn.execute("SELECT pg_reload_conf()")


def _make_template(server_url: str) -> None:
    """(Re)make the template: a database with every migration applied."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{_TEMPLATE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{_TEMPLATE}"')
    db = Database(make_conninfo(server_url, dbname=_TEMPLATE), min_size=1, max_size=2)
    db.open()
    db.migrate()
    db.close()


@pytest.fixture(scope="session")
def template_db(pg_server_url: str) -> str:
    """A database with every migration applied, cloned for each test."""
    return _TEMPLATE


class FreshDatabases:
    """Per-test databases, cloned from the template once and then cleaned for reuse.

    A database a test gives back is recycled on a background thread while the next test
    runs: its sessions are ended, it is renamed (a session the test leaked cannot reach the
    next test's database by its old name), and every table but the migration record is
    emptied, sequences restarted. A test that changed the schema (or left the database
    unusable) is seen by its fingerprint, and its database is dropped and a fresh clone made
    instead.

    What each step costs the server decides how fast a test follows another, so each is the
    cheapest measured (PostgreSQL 18, fsync off): tables are emptied with DELETE, triggers and
    foreign keys off (a few ms; TRUNCATE makes new files for every table and index, ~100 ms),
    and clones are copied file by file (STRATEGY FILE_COPY, ~30 ms; the default WAL_LOG
    copies through the WAL, ~250 ms). One session to the server serves every step.
    """

    #: Databases made before the first test asks.
    AHEAD = 2
    #: Seconds a test waits for its database before it fails.
    TAKE_TIMEOUT_S = 60.0

    def __init__(self, server_url: str, template: str) -> None:
        self._server_url = server_url
        self._template = template
        self._fingerprint = self._schema_fingerprint(template)
        self._ready: queue.Queue[str | Exception] = queue.Queue()
        self._jobs: queue.Queue[str | None] = queue.Queue()  # "" makes one, a name recycles it
        self._failures: list[Exception] = []
        self._made: set[str] = set()
        self._admin: psycopg.Connection | None = None  # the thread's session to the server
        self._create = f'CREATE DATABASE "{{}}" TEMPLATE "{template}"' + (
            " STRATEGY FILE_COPY" if self._server_version() >= 150000 else ""
        )
        self._thread = threading.Thread(target=self._run, name="test-databases", daemon=True)
        for _ in range(self.AHEAD):
            self._jobs.put("")
        self._thread.start()

    def take(self) -> str:
        """The name of a clean database for one test (made now if none is ready)."""
        if self._ready.empty() and self._jobs.empty():
            self._jobs.put("")
        made = self._ready.get(timeout=self.TAKE_TIMEOUT_S)
        if isinstance(made, Exception):
            raise made
        return made

    def give_back(self, name: str) -> None:
        """Recycle ``name`` on the thread (its sessions are ended first)."""
        self._jobs.put(name)

    def close(self) -> None:
        """Drop every database made here; raise the first recycling that failed."""
        self._jobs.put(None)
        self._thread.join(self.TAKE_TIMEOUT_S)
        for name in sorted(self._made):
            self._drop(name)
        if self._admin is not None:
            self._admin.close()
        if self._failures:
            raise self._failures[0]

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                self._ready.put(self._recycle(job) if job else self._make())
            except Exception as exc:  # a failed make fails the test that takes it
                if job:
                    self._failures.append(exc)
                self._ready.put(exc)

    def _new_name(self) -> str:
        return f"wamgr_t{os.getpid()}_{next(_counter)}"

    def _server(self) -> psycopg.Connection:
        """The session to the server (opened again if the last one broke)."""
        if self._admin is None or self._admin.closed or self._admin.broken:
            self._admin = psycopg.connect(self._server_url, autocommit=True)
        return self._admin

    def _server_version(self) -> int:
        with psycopg.connect(self._server_url, autocommit=True) as conn:
            return conn.info.server_version

    def _make(self) -> str:
        name = self._new_name()
        self._server().execute(self._create.format(name))
        self._made.add(name)
        return name

    def _recycle(self, name: str) -> str:
        """``name`` emptied under a new name, or a fresh clone when it cannot be reused."""
        renamed = self._new_name()
        try:
            conn = self._server()
            conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
            conn.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            conn.execute(f'ALTER DATABASE "{name}" RENAME TO "{renamed}"')
            self._made.discard(name)
            self._made.add(renamed)
            with psycopg.connect(self._url(renamed), autocommit=True) as conn:
                row = conn.execute(_SCHEMA_FINGERPRINT).fetchone()
                if not row or str(row[0]) != self._fingerprint:
                    raise LookupError("the test changed the schema")
                conn.execute(_EMPTY_EVERY_TABLE)
            return renamed
        except (psycopg.Error, LookupError):
            self._drop(name)
            self._drop(renamed)
            return self._make()

    def _url(self, name: str) -> str:
        return make_conninfo(self._server_url, dbname=name)

    def _schema_fingerprint(self, name: str) -> str:
        with psycopg.connect(self._url(name), autocommit=True) as conn:
            row = conn.execute(_SCHEMA_FINGERPRINT).fetchone()
        return str(row[0]) if row else ""

    def _drop(self, name: str) -> None:
        self._made.discard(name)
        self._server().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


#: Every relation, column, function and trigger outside the system schemas, as one hash.
_SCHEMA_FINGERPRINT = """
SELECT md5(coalesce(string_agg(item, ',' ORDER BY item), '')) FROM (
    SELECT n.nspname || '.' || c.relname || ':' || c.relkind::text || ':' || coalesce(a.attname, '')
           || ':' || coalesce(a.atttypid::text, '') AS item
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_%'
    UNION ALL
    SELECT 'fn:' || n.nspname || '.' || p.proname FROM pg_proc p
      JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_%'
    UNION ALL
    SELECT 'tg:' || t.tgname FROM pg_trigger t WHERE NOT t.tgisinternal
) items
"""

#: Empties every table of the public schema but the migration record, with triggers and
#: foreign keys off (so in any order, and no NOTIFY); restarts every sequence.
_EMPTY_EVERY_TABLE = """
DO $$
DECLARE item text;
BEGIN
    SET LOCAL session_replication_role = replica;
    FOR item IN SELECT format('%I.%I', schemaname, tablename) FROM pg_tables
                 WHERE schemaname = 'public' AND tablename <> 'wamgr_schema_migrations' LOOP
        EXECUTE 'DELETE FROM ' || item;
    END LOOP;
    FOR item IN SELECT format('%I.%I', schemaname, sequencename) FROM pg_sequences
                 WHERE schemaname = 'public' LOOP
        EXECUTE 'ALTER SEQUENCE ' || item || ' RESTART';
    END LOOP;
END $$
"""


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


@pytest.fixture
def media_server() -> Iterator[MediaServer]:
    """A loopback HTTP server with one small file per media kind (``tests/media_server.py``),
    for messages whose media is given by URL; closed after the test."""
    server = MediaServer()
    yield server
    server.close()


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
        manager = ConnectionManager(Config(**settings)).start()
        started.append(manager)
        # The first claim pass runs on its own thread, maybe after start() returned: wait
        # for it, so it cannot claim a tenant the test adds next (and races another manager).
        if manager.config.claim_tenants:
            assert manager.runtime.claimer.wait_first_pass(10.0), "no first claim pass"
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


@pytest.fixture(autouse=True)
def _collector_as_it_was() -> Iterator[None]:
    """Put the garbage collector back as it was (``wamgr.tune_gc()``, which an in-process
    ``serve`` calls, sets it for the whole process)."""
    thresholds = gc.get_threshold()
    yield
    if gc.get_freeze_count() or gc.get_threshold() != thresholds:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


@pytest.fixture
def logs() -> Iterator[list[str]]:
    """Every loguru record logged during the test, as ``"LEVEL message"`` with its traceback
    if any."""
    lines: list[str] = []
    sink = logger.add(lines.append, format="{level} {message}", level="DEBUG", catch=False)
    yield lines
    logger.remove(sink)


#: For each test module collected in this run: whether it has a test not marked slow.
_HAS_FAST_TEST = pytest.StashKey[dict[str, bool]]()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Note which collected modules have a test in the quick loop (before ``-m`` deselects)."""
    modules = config.stash.setdefault(_HAS_FAST_TEST, {})
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        modules[path] = modules.get(path, False) or item.get_closest_marker("slow") is None


@pytest.fixture
def quick_loop_modules(request: pytest.FixtureRequest) -> dict[str, bool]:
    """Each test module of this run (path from the root), and whether ``bin/test --fast``
    runs any of its tests."""
    return dict(request.config.stash.get(_HAS_FAST_TEST, {}))


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
    that show who started the thread. The test server is stopped first (if no test stopped
    it: one started while collecting, for tests that were then all deselected).
    """
    _SERVER.stop()
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
