"""Status writes notify every listener: the ids written, in the transaction that wrote them,
or "*" when the ids would not fit in one notification."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from wamgr.status import Desired, TenantState, TenantStatus
from wamgr.store.db import Database
from wamgr.store.status_feed import EVERYTHING, StatusChannel, parse_payload
from wamgr.store.tenants import TenantStore

WAIT_S = 5.0


@pytest.fixture
def channel(database_url: str) -> Iterator[StatusChannel]:
    listening = StatusChannel(database_url, connect_timeout_s=5)
    yield listening
    listening.close()


def _connected(tenant_id: str) -> tuple[TenantStatus, str | None]:
    return TenantStatus(tenant_id, TenantState.CONNECTED, owner="inst-0"), "connecting"


def test_a_status_write_notifies_the_ids_it_wrote(db: Database, channel) -> None:
    tenants = TenantStore(db)
    for tenant in ("a", "b", "c"):
        tenants.set_desired(tenant, Desired.CONNECTED)

    tenants.write_statuses([_connected("a"), _connected("b")], "inst-0")

    assert channel.wait(WAIT_S, settle_s=0.05) == frozenset({"a", "b"})


@pytest.mark.slow
def test_a_write_that_wrote_nothing_notifies_nobody(db: Database, channel) -> None:
    tenants = TenantStore(db)

    assert tenants.write_statuses([_connected("unknown")], "inst-0") == 0

    assert channel.wait(0.3, settle_s=0.05) == frozenset()


def test_too_many_ids_for_one_notification_mean_everything(db: Database, channel) -> None:
    tenants = TenantStore(db)
    ids = [f"tenant-with-a-long-name-{n:05d}" for n in range(400)]  # over 8000 bytes
    with db.connection() as conn:
        conn.execute("INSERT INTO wamgr_tenants (tenant_id) SELECT unnest(%s::text[])", (ids,))

    tenants.write_statuses([_connected(t) for t in ids], "inst-0")

    assert channel.wait(WAIT_S, settle_s=0.05) is None


def test_payloads_parse_to_ids_or_everything() -> None:
    assert parse_payload("a b.c d-1") == frozenset({"a", "b.c", "d-1"})
    assert parse_payload("") == frozenset()
    assert parse_payload(EVERYTHING) is None
