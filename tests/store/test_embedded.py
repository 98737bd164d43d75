"""The embedded PostgreSQL: shared by the processes of one home, and never outliving them.

Each test starts its own server in its own home (a few seconds: initdb), and a user process
that is killed with SIGKILL, as a crash or an OOM kill would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import psycopg
import pytest
from loguru import logger

from wamgr.store import embedded

#: Seconds a user process gets to start (or join) the server and say so.
START_S = 60.0
#: Seconds the server gets to stop once its last user is gone (the watcher looks every
#: WATCH_INTERVAL_S; stopping takes a moment).
STOP_S = embedded.WATCH_INTERVAL_S * 3 + 10.0
POLL_S = 0.1

_USER = """
import sys
from pathlib import Path
from wamgr.store import embedded
embedded.acquire(Path(sys.argv[1]))
print("ready", flush=True)
sys.stdin.read()
"""


def _postmaster(home: Path) -> psutil.Process | None:
    """The running server of ``home``, if any."""
    pid_file = home / "pgdata" / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split()[0])
        process = psutil.Process(pid)
        return None if process.status() == psutil.STATUS_ZOMBIE else process
    except (FileNotFoundError, IndexError, ValueError, psutil.NoSuchProcess):
        return None


def _listed_users(home: Path) -> list[int]:
    path = home / "pgdata" / ".handle_pids.json"
    return json.loads(path.read_text() or "[]") if path.exists() else []


@pytest.fixture
def home() -> Iterator[Path]:
    """A home of its own, outside pytest's basetemp (which another pytest session may delete
    meanwhile); a server a failed test left behind is stopped."""
    home = Path(tempfile.mkdtemp(prefix="wamgr-test-embedded-")) / "home"
    yield home
    server = _postmaster(home)
    if server is not None:
        server.terminate()
        server.wait(10)
    shutil.rmtree(home.parent, ignore_errors=True)


def _start_user(home: Path) -> subprocess.Popen[str]:
    """A process that acquires the server of ``home`` and holds it until killed."""
    user = subprocess.Popen(
        [sys.executable, "-c", _USER, str(home)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert user.stdout is not None
    assert user.stdout.readline() == "ready\n"
    return user


def _kill(user: subprocess.Popen[str]) -> None:
    user.kill()
    user.wait(10)
    for stream in (user.stdin, user.stdout):
        assert stream is not None
        stream.close()


def _wait(predicate: Callable[[], bool]) -> bool:
    """Whether ``predicate`` came true within STOP_S (another process: no event to wait on)."""
    end = time.monotonic() + STOP_S
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(POLL_S)
    return False


@pytest.mark.slow
def test_the_last_user_to_leave_stops_the_server(home: Path) -> None:
    lines: list[str] = []
    sink = logger.add(lines.append, level="INFO", format="{message}")
    try:
        url = embedded.acquire(home)
    finally:
        logger.remove(sink)
    assert lines[0].startswith(f"creating the embedded PostgreSQL in {home / 'pgdata'}")
    assert lines[1].startswith("embedded PostgreSQL ready in")
    assert embedded.acquire(home) == url  # joined, in-process

    embedded.release(home)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    embedded.release(home)

    assert _postmaster(home) is None
    assert _listed_users(home) == []


@pytest.mark.slow
def test_a_killed_user_is_dropped_at_the_next_start_which_then_stops_the_server(
    home: Path,
) -> None:
    killed = _start_user(home)
    server = _postmaster(home)
    _kill(killed)

    url = embedded.acquire(home)
    try:
        assert killed.pid not in _listed_users(home)
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        embedded.release(home)

    assert _postmaster(home) is None, f"server {server} still running after the last release"
    assert _listed_users(home) == []


@pytest.mark.slow
def test_the_server_stops_when_its_last_user_is_killed(home: Path) -> None:
    first, second = _start_user(home), _start_user(home)
    assert _postmaster(home) is not None

    _kill(first)
    assert _wait(lambda: first.pid not in _listed_users(home)), "the killed user stays listed"
    assert _postmaster(home) is not None  # the second user still has it

    _kill(second)
    assert _wait(lambda: _postmaster(home) is None), "the server outlived every user"


def test_dead_users_and_reused_pids_are_dropped_from_the_list(tmp_path: Path) -> None:
    from wamgr.store.embedded_watch import PIDS_FILE, USERS_FILE, drop_dead_users, note_user

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(30)
    reused = os.getppid()  # alive, but not the process that was noted under this pid
    me = os.getpid()
    (tmp_path / PIDS_FILE).write_text(json.dumps([gone.pid, reused, me]))
    note_user(tmp_path, me)
    users = json.loads((tmp_path / USERS_FILE).read_text())
    (tmp_path / USERS_FILE).write_text(json.dumps({**users, str(reused): 12345.0}))

    assert drop_dead_users(tmp_path) == [me]
    assert json.loads((tmp_path / PIDS_FILE).read_text()) == [me]
    assert list(json.loads((tmp_path / USERS_FILE).read_text())) == [str(me)]
