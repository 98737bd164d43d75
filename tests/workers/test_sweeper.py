"""The sweeper thread: expired locks and old inbound ids go away; the thread ends on stop."""

from __future__ import annotations

import threading

import pytest

from wamgr import Config, ConfigError
from wamgr.errors import DatabaseUnavailable
from wamgr.workers.sweeper import Sweeper

#: Seconds a background sweep gets to show its effect.
SWEEP_DEADLINE_S = 5.0


def _inbound_rows(mgr) -> int:
    with mgr.runtime.db.connection() as conn:
        return conn.execute("SELECT count(*) FROM wamgr_inbound").fetchone()[0]


@pytest.mark.slow
def test_manager_sweeps_expired_locks_and_old_ids_and_ends_its_sweeper(
    make_manager, thread_baseline, wait_until
):
    mgr = make_manager(sweep_interval_s=0.05, inbound_retention_s=0.2)
    assert "wamgr-sweeper" in thread_baseline()
    live = mgr.locks.claim("live", ttl=30)
    assert mgr.locks.claim("crashed", ttl=0.1) is not None
    assert mgr.seen("t1", "m1")

    wait_until(
        lambda: [row.key for row in mgr.locks.all()] == ["live"],
        SWEEP_DEADLINE_S,
        "the expired lock to be swept",
    )
    wait_until(lambda: _inbound_rows(mgr) == 0, SWEEP_DEADLINE_S, "the inbound id to be swept")
    assert mgr.seen("t1", "m1")  # past the retention a delivery is new again
    assert live.release()

    mgr.stop()
    assert thread_baseline() == set()


def test_defaults_and_settings():
    cfg = Config()
    assert cfg.inbound_retention_s == 7 * 86_400
    assert cfg.sweep_interval_s == 60
    loaded = Config.load(env={"WAMGR_INBOUND_RETENTION": "3600", "WAMGR_SWEEP_INTERVAL": "5"})
    assert (loaded.inbound_retention_s, loaded.sweep_interval_s) == (3600.0, 5.0)
    for name in ("inbound_retention_s", "sweep_interval_s"):
        with pytest.raises(ConfigError, match=f"{name} must be a positive number"):
            Config(**{name: 0})


class _FailingOnce:
    """A stand-in store whose first sweep fails as if the database were down."""

    def __init__(self) -> None:
        self.calls = 0
        self.second_call = threading.Event()

    def sweep(self, *_: object) -> int:
        self.calls += 1
        if self.calls == 1:
            raise DatabaseUnavailable("simulated outage")
        self.second_call.set()
        return 0


def test_a_failed_sweep_is_retried_next_interval():
    store = _FailingOnce()
    sweeper = Sweeper(store, store, interval_s=0.01, retention_s=60)  # type: ignore[arg-type]
    sweeper.start()
    try:
        assert store.second_call.wait(SWEEP_DEADLINE_S)
    finally:
        assert sweeper.stop(SWEEP_DEADLINE_S)
    assert not any(t.name == "wamgr-sweeper" and t.is_alive() for t in threading.enumerate())
