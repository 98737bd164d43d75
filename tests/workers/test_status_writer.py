"""The status writer: batches per tenant, retries a refused batch, writes the rest on stop."""

from __future__ import annotations

import threading

import pytest

from wamgr.errors import DatabaseUnavailable
from wamgr.status import Desired, TenantState, TenantStatus
from wamgr.store.db import Database
from wamgr.store.leases import LeaseStore
from wamgr.store.tenants import TenantStore
from wamgr.workers import status_writer
from wamgr.workers.status_writer import StatusWriter

WAIT_S = 5.0


class FakeTenants:
    """Stands for TenantStore: records every batch; refuses while ``down`` is set."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[TenantStatus, str | None]]] = []
        self.events: list[list[object]] = []
        self.down = threading.Event()
        self.refused = threading.Semaphore(0)
        self.entered = threading.Event()
        self.hold = threading.Event()
        self.hold.set()

    def write_statuses(self, changes, writer, events=(), endpoints=()) -> int:
        self.entered.set()
        assert self.hold.wait(WAIT_S)
        if self.down.is_set():
            self.refused.release()
            raise DatabaseUnavailable("simulated outage")
        self.batches.append(list(changes))
        self.events.append(list(events))
        return len(changes)


def _status(tenant: str, state: TenantState) -> TenantStatus:
    return TenantStatus(tenant, state, owner="inst-0")


@pytest.fixture
def fake() -> FakeTenants:
    return FakeTenants()


def _writer(fake: FakeTenants, **kwargs) -> StatusWriter:
    return StatusWriter(fake, "inst-0", **kwargs)  # type: ignore[arg-type]


def test_changes_submitted_before_start_are_written_once_started(fake):
    writer = _writer(fake)
    writer.submit(_status("t1", TenantState.CONNECTING), "stopped")
    assert not writer.flush(0.05)  # nothing runs before start
    writer.start()
    try:
        assert writer.flush(WAIT_S)
    finally:
        assert writer.stop(WAIT_S)
    assert [[(s.tenant_id, s.state, old) for s, old in b] for b in fake.batches] == [
        [("t1", TenantState.CONNECTING, "stopped")]
    ]


def test_a_burst_of_one_tenant_collapses_into_its_newest_status(fake):
    fake.hold.clear()  # the first write blocks, so the burst piles up behind it
    writer = _writer(fake)
    writer.start()
    try:
        writer.submit(_status("t0", TenantState.CONNECTING), "stopped")
        assert fake.entered.wait(WAIT_S)
        writer.submit(_status("t1", TenantState.CONNECTING), "stopped")
        writer.submit(_status("t1", TenantState.PAIRING), "connecting")
        writer.submit(_status("t1", TenantState.CONNECTED), "pairing")
        fake.hold.set()
        assert writer.flush(WAIT_S)
    finally:
        assert writer.stop(WAIT_S)
    assert [[(s.tenant_id, s.state, old) for s, old in b] for b in fake.batches] == [
        [("t0", TenantState.CONNECTING, "stopped")],
        [("t1", TenantState.CONNECTED, "stopped")],  # the newest, from the oldest state
    ]


def test_a_lone_change_is_written_at_once_and_a_burst_after_it_in_one_batch(fake, monkeypatch):
    monkeypatch.setattr(status_writer, "GATHER_S", 1.0)
    writer = _writer(fake)
    writer.start()
    try:
        writer.submit(_status("t0", TenantState.CONNECTING), "stopped")
        assert fake.entered.wait(0.5)  # at once: nothing rests before a write
        writer.submit(_status("t1", TenantState.CONNECTING), "stopped")
        threading.Event().wait(0.1)
        assert len(fake.batches) == 1  # the worker rests after its write: t1 waits
        for n in range(2, 11):
            writer.submit(_status(f"t{n}", TenantState.CONNECTING), "stopped")
        assert writer.flush(WAIT_S)
    finally:
        assert writer.stop(WAIT_S)
    assert [len(batch) for batch in fake.batches] == [1, 10]


def test_a_refused_batch_is_put_back_and_retried(fake, monkeypatch):
    monkeypatch.setattr(status_writer, "RETRY_DELAY_S", 0.01)
    fake.down.set()
    writer = _writer(fake)
    writer.start()
    try:
        writer.submit(_status("t1", TenantState.CONNECTING), "stopped")
        assert fake.refused.acquire(timeout=WAIT_S)
        assert fake.refused.acquire(timeout=WAIT_S)  # retried, still down
        assert not writer.flush(0)
        fake.down.clear()
        assert writer.flush(WAIT_S)
    finally:
        assert writer.stop(WAIT_S)
    assert [s.state for b in fake.batches for s, _ in b] == [TenantState.CONNECTING]


def test_stop_writes_what_is_pending_and_does_not_retry_a_refusal(fake):
    fake.hold.clear()
    writer = _writer(fake)
    writer.start()
    writer.submit(_status("t1", TenantState.CONNECTING), "stopped")
    assert fake.entered.wait(WAIT_S)
    writer.submit(_status("t2", TenantState.STOPPED), "connected")  # pending at stop
    stopping = threading.Thread(target=writer.stop, args=(WAIT_S,), name="test-stopper")
    stopping.start()
    fake.hold.set()
    stopping.join(WAIT_S)
    assert not writer.alive
    assert [[s.tenant_id for s, _ in b] for b in fake.batches] == [["t1"], ["t2"]]

    down = FakeTenants()
    down.down.set()
    writer = _writer(down)
    writer.start()
    writer.submit(_status("t3", TenantState.STOPPED), "connected")
    assert down.refused.acquire(timeout=WAIT_S)
    writer.submit(_status("t3", TenantState.STOPPED), "connected")
    assert writer.stop(WAIT_S)  # the pause before a retry ends at once, no retry after
    assert down.batches == []


def test_state_changes_become_webhook_events_and_wake_their_sender(fake):
    written = threading.Event()
    writer = _writer(fake, endpoints=("http://hook.example/",), on_events_written=written.set)
    writer.start()
    try:
        writer.submit(_status("t1", TenantState.CONNECTED), "connecting")
        writer.submit(_status("t1", TenantState.CONNECTED), "connected")  # no change: no event
        assert writer.flush(WAIT_S)
        assert written.wait(WAIT_S)
    finally:
        assert writer.stop(WAIT_S)
    events = [e for batch in fake.events for e in batch]
    assert len(events) == 1


def test_writes_reach_the_database(database_url):
    db = Database(database_url, min_size=1, max_size=2)
    db.open()
    try:
        tenants = TenantStore(db)
        tenants.set_desired("t1", Desired.CONNECTED)
        LeaseStore(db).acquire("t1", "inst-0", 30.0)  # without it, "connected" reads as stale
        writer = StatusWriter(tenants, "inst-0")
        writer.start()
        try:
            writer.submit(_status("t1", TenantState.CONNECTED), "connecting")
            assert writer.flush(WAIT_S)
        finally:
            assert writer.stop(WAIT_S)
        record = tenants.get("t1")
        assert record is not None
        assert (record.status.state, record.status.owner) == (TenantState.CONNECTED, "inst-0")
    finally:
        db.close()
