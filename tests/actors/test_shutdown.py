"""stop() racing connect(): once stop() has returned, no link of that manager is open.

Six threads call ``connect`` on a few tenants while another thread calls ``stop``. A connect
that arrives during or after the stop fails with a named error and opens nothing (issue #12,
defect 1: a Connect queued behind Shutdown used to open a new link that the teardown then
left open, for a second instance to collide with).
"""

from __future__ import annotations

import threading

import pytest

from wamgr import Config, ConnectionManager
from wamgr.clock import VirtualClock
from wamgr.errors import WamgrError
from wamgr.transport.sim import SimWhatsApp

TENANTS = ("a", "b", "c")
CONNECTORS = 6


def connect_while_stopping(database_url: str, home, trial: int) -> tuple[int, set[type]]:
    """One trial: returns the sockets still open after stop() returned, and the types of the
    errors the connecting threads got."""
    clock = VirtualClock()
    sim = SimWhatsApp(auto_pair=True, clock=clock)
    mgr = ConnectionManager(
        Config(
            database_url=database_url,
            home=home,
            transport=sim,
            instance_id="race",  # one id: a trial may take over what the last one left
            clock=clock,
            claim_interval_s=3600.0,
            lease_ttl_s=1e6,
            renew_deadline_s=5e5,
            renew_interval_s=1e5,
        )
    ).start()
    go = threading.Barrier(CONNECTORS + 1)
    some_connected = threading.Event()
    errors: set[type] = set()

    def connector(index: int) -> None:
        go.wait()
        for step in range(1000):
            try:
                mgr.connect(TENANTS[(index + step) % len(TENANTS)], timeout=5)
            except Exception as exc:  # the named error, once the stop has begun
                errors.add(type(exc))
                return
            if step >= len(TENANTS):
                some_connected.set()

    threads = [threading.Thread(target=connector, args=(i,)) for i in range(CONNECTORS)]
    for thread in threads:
        thread.start()
    go.wait()
    some_connected.wait(5)
    mgr.stop()
    left_open = sim.open_sockets()
    for thread in threads:
        thread.join(10)
    return max(left_open, sim.open_sockets()), errors


def test_connects_racing_stop_leave_no_socket_open(database_url, tmp_path):
    left_open, errors = connect_while_stopping(database_url, tmp_path / "home", 0)
    assert left_open == 0
    assert all(issubclass(error, WamgrError) for error in errors), errors


@pytest.mark.slow
def test_connects_racing_stop_leave_no_socket_open_twenty_times(database_url, tmp_path):
    outcomes = [connect_while_stopping(database_url, tmp_path / "home", i) for i in range(20)]
    assert [left for left, _ in outcomes] == [0] * 20
    errors = set().union(*(errors for _, errors in outcomes))
    assert all(issubclass(error, WamgrError) for error in errors), errors
