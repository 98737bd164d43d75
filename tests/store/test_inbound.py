"""Inbound message ids against PostgreSQL: each id is new exactly once, then swept."""

from __future__ import annotations

import threading

import pytest

from wamgr.errors import InvalidDuration, InvalidMessageId, InvalidTenantId
from wamgr.store.db import Database
from wamgr.store.inbound import InboundLog


@pytest.fixture
def inbound(db):
    return InboundLog(db)


def _ids(db: Database) -> list[tuple[str, str]]:
    with db.connection() as conn:
        rows = conn.execute(
            "SELECT tenant_id, message_id FROM wamgr_inbound ORDER BY tenant_id, message_id"
        ).fetchall()
    return [tuple(row) for row in rows]


def _age(db: Database, message_id: str, seconds: float) -> None:
    """Pretend ``message_id`` was seen ``seconds`` ago."""
    with db.connection() as conn:
        conn.execute(
            "UPDATE wamgr_inbound SET seen_at = now() - %s * interval '1 second'"
            " WHERE message_id = %s",
            (seconds, message_id),
        )


def test_16_threads_seeing_one_id_are_told_new_exactly_once(inbound, db):
    barrier = threading.Barrier(16)
    answers: list[bool] = []
    failures: list[BaseException] = []

    def deliver() -> None:
        try:
            barrier.wait(10)
            answers.append(inbound.seen("shop-1", "3EB0C0FFEE"))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=deliver, name=f"deliver-{i}") for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert not failures, failures
    assert len(answers) == 16
    assert answers.count(True) == 1
    assert _ids(db) == [("shop-1", "3EB0C0FFEE")]


def test_ids_are_per_tenant(inbound):
    assert inbound.seen("a", "m1")
    assert inbound.seen("b", "m1")
    assert inbound.seen("a", "m2")
    assert not inbound.seen("a", "m1")
    assert not inbound.seen("b", "m1")


def test_sweep_forgets_ids_older_than_the_retention(inbound, db):
    for message_id in ("old-1", "old-2", "fresh"):
        inbound.seen("t", message_id)
    _age(db, "old-1", 8 * 86_400)
    _age(db, "old-2", 7 * 86_400 + 1)

    assert inbound.sweep(7 * 86_400, batch=1) == 2  # in statements of one row
    assert _ids(db) == [("t", "fresh")]
    assert inbound.sweep(7 * 86_400) == 0
    assert inbound.seen("t", "old-1")  # forgotten: a delivery now counts as new
    assert not inbound.seen("t", "fresh")


def test_invalid_arguments_are_refused(inbound, db):
    for message_id in ["", "x" * 256, "a\x00b", None, 7]:
        with pytest.raises(InvalidMessageId, match="1 to 255 characters") as caught:
            inbound.seen("t", message_id)
        assert caught.value.http_status == 422
    with pytest.raises(InvalidTenantId):
        inbound.seen("bad id", "m1")
    for retention in [0, -1, float("nan"), "7d"]:
        with pytest.raises(InvalidDuration, match="retention must be"):
            inbound.sweep(retention)
    assert inbound.seen("t", "x" * 255)
    assert _ids(db) == [("t", "x" * 255)]
