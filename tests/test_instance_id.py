"""One live process per instance id (issue #13, defect 1): a manager started with an id that
another live manager holds refuses to start, naming the holder, whether that holder runs in
this process or in another; a crashed holder blocks the id for at most the lease TTL; a
manager whose id was taken over fences every link."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from wamgr import InstanceIdInUse, TenantState
from wamgr.store.db import Database
from wamgr.store.instances import InstanceStore

CONNECTED = TenantState.CONNECTED
#: Seconds a child process gets to start its manager, and to exit.
CHILD_DEADLINE_S = 30.0
#: Lease timings of the crash test: a crashed holder blocks its id for at most TTL_S.
TTL_S, RENEW_INTERVAL_S, RENEW_DEADLINE_S = 2.0, 0.5, 1.5
TIMINGS = {
    "lease_ttl_s": TTL_S,
    "renew_interval_s": RENEW_INTERVAL_S,
    "renew_deadline_s": RENEW_DEADLINE_S,
}

_CHILD = textwrap.dedent(
    """
    import sys
    from wamgr import Config, ConnectionManager

    url, instance_id, ttl, interval, deadline = sys.argv[1:6]
    config = Config(
        database_url=url, transport="sim", instance_id=instance_id, home=sys.argv[6],
        lease_ttl_s=float(ttl), renew_interval_s=float(interval),
        renew_deadline_s=float(deadline),
    )
    with ConnectionManager(config):
        print("started", flush=True)
        sys.stdin.read()  # until the test closes our stdin
    """
)


@contextmanager
def _manager_in_a_child(
    database_url: str, home: Path, instance_id: str
) -> Iterator[subprocess.Popen]:
    """A ConnectionManager holding ``instance_id`` in another process; it stops cleanly
    when its stdin closes."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _CHILD,
            database_url,
            instance_id,
            str(TTL_S),
            str(RENEW_INTERVAL_S),
            str(RENEW_DEADLINE_S),
            str(home),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "started", "the child did not start"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(CHILD_DEADLINE_S)
        for pipe in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                pipe.close()  # type: ignore[union-attr]


def test_a_second_manager_with_the_same_id_in_one_process_refuses_to_start(make_manager, sim):
    first = make_manager(instance_id="gw-1", claim_interval_s=0.05)
    first.connect("t1")
    first.wait_for("t1", CONNECTED, timeout=5)

    with pytest.raises(InstanceIdInUse) as refused:
        make_manager(instance_id="gw-1", claim_interval_s=0.05)

    assert (refused.value.host, refused.value.pid) == (socket.gethostname(), os.getpid())
    assert first.status("t1").state is CONNECTED
    assert first.leases_held() == 1
    assert sim.stats()["max_concurrent_sockets"] == 1


@pytest.mark.slow
def test_a_manager_refuses_an_id_held_by_another_process_and_takes_it_once_released(
    make_manager, database_url, tmp_path
):
    with _manager_in_a_child(database_url, tmp_path / "child", "gw-1") as child:
        with pytest.raises(InstanceIdInUse) as refused:
            make_manager(instance_id="gw-1")
        assert (refused.value.host, refused.value.pid) == (socket.gethostname(), child.pid)
        assert child.poll() is None  # the holder runs on, undisturbed

        child.stdin.close()  # a clean stop releases the id at once
        assert child.wait(CHILD_DEADLINE_S) == 0

    assert make_manager(instance_id="gw-1").config.instance_id == "gw-1"


@pytest.mark.slow
def test_a_crashed_holder_blocks_its_id_for_at_most_the_lease_ttl(
    make_manager, database_url, tmp_path
):
    with _manager_in_a_child(database_url, tmp_path / "child", "gw-1") as child:
        child.send_signal(signal.SIGKILL)
        child.wait(CHILD_DEADLINE_S)
        killed_at = time.monotonic()
        with pytest.raises(InstanceIdInUse):
            make_manager(instance_id="gw-1", **TIMINGS)
    while True:
        try:
            make_manager(instance_id="gw-1", **TIMINGS)
            break
        except InstanceIdInUse:
            assert time.monotonic() - killed_at < TTL_S + 1.0, "the id stayed blocked"
            time.sleep(0.1)  # another process's claim: nothing to wait on but the clock


def test_a_manager_whose_id_was_taken_over_closes_every_link(
    make_manager, sim, clock, database_url, wait_until
):
    mgr = make_manager(
        instance_id="gw-1", lease_ttl_s=30.0, renew_interval_s=10.0, renew_deadline_s=20.0
    )
    for tenant in ("a", "b"):
        mgr.connect(tenant)
        mgr.wait_for(tenant, CONNECTED, timeout=5)
    db = Database(database_url, max_size=1)
    db.open()
    try:
        with db.connection() as conn:  # its claim expired (a long pause) and was taken
            conn.execute("UPDATE wamgr_instances SET expires_at = now() - interval '1 second'")
        InstanceStore(db).claim("gw-1", 30.0, host="elsewhere", pid=1)
    finally:
        db.close()

    clock.advance(10.0)  # the next renewal finds the id gone

    for tenant in ("a", "b"):
        mgr.wait_for(tenant, TenantState.STANDBY, timeout=5)
    assert sim.open_sockets() == 0
    assert mgr.connect("a").state is TenantState.STANDBY  # no lease under a lost id
    assert sim.open_sockets() == 0 and sim.dial_attempts("a") == 1
    runtime = mgr.runtime  # it claims and takes commands no more
    wait_until(lambda: not runtime.claimer.alive and not runtime.listener.alive, what="no work")
