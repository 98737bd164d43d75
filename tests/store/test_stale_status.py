"""A stored status whose owner no longer holds a live lease is not shown as it was stored
(issue #13, defect 8: after a database outage, every tenant of a dead instance still read
`connected`, owned by it, with a lease expiry in the past)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from wamgr import TenantState
from wamgr.store.db import Database
from wamgr.store.tenants import TenantStore


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url, max_size=2)
    database.open()
    yield database
    database.close()


def _arrange(
    db: Database,
    state: str,
    lease: tuple[str, str] | None,
    desired: str = "connected",
    owner: str = "gw-1",
) -> None:
    """Tenant t1 stored in ``state`` by ``owner``; ``lease``: (its owner, its expiry as SQL)."""
    with db.connection() as conn:
        conn.execute(
            "INSERT INTO wamgr_tenants (tenant_id, desired, state, owner, last_error)"
            " VALUES ('t1', %s, %s, %s, 'as stored')",
            (desired, state, owner),
        )
        if lease is not None:
            conn.execute(
                "INSERT INTO wamgr_leases (tenant_id, owner, token, expires_at)"
                f" VALUES ('t1', %s, 1, {lease[1]})",  # type: ignore[arg-type]
                (lease[0],),
            )


@pytest.mark.parametrize("state", ["connecting", "pairing", "connected"])
def test_a_live_state_of_an_owner_whose_lease_expired_reads_standby_and_says_why(db, state):
    _arrange(db, state, ("gw-1", "now() - interval '1 minute'"))

    record = TenantStore(db).get("t1")

    assert record.status.state is TenantState.STANDBY
    assert record.status.owner is None
    assert record.status.last_error.startswith(
        f"stale status: gw-1 showed {state} but its lease expired at "
    )
    assert record.status.last_error.endswith(" UTC")
    assert record.lease_expires_at is not None  # the expiry is still shown as stored


def test_an_owner_without_a_lease_or_with_anothers_reads_standby(db):
    _arrange(db, "connected", None)
    store = TenantStore(db)
    assert store.get("t1").status.last_error == (
        "stale status: gw-1 showed connected but holds no lease on it"
    )
    with db.connection() as conn:
        conn.execute(
            "INSERT INTO wamgr_leases (tenant_id, owner, token, expires_at)"
            " VALUES ('t1', 'gw-2', 2, now() + interval '1 minute')"
        )
    (record,) = store.all()
    assert record.status.state is TenantState.STANDBY
    assert record.status.last_error == (
        "stale status: gw-1 showed connected but gw-2 holds its lease now"
    )


def test_a_stale_tenant_not_wanted_connected_reads_stopped(db):
    _arrange(db, "connected", None, desired="stopped")

    assert TenantStore(db).get("t1").status.state is TenantState.STOPPED


def test_a_live_lease_and_the_states_that_need_none_read_as_stored(db):
    _arrange(db, "connected", ("gw-1", "now() + interval '1 minute'"))
    store = TenantStore(db)
    live = store.get("t1").status
    assert (live.state, live.owner, live.last_error) == (TenantState.CONNECTED, "gw-1", "as stored")
    with db.connection() as conn:
        conn.execute("DELETE FROM wamgr_leases")
    for state in ("backoff", "logged_out", "conflict", "failed", "banned", "standby", "stopped"):
        with db.connection() as conn:
            conn.execute("UPDATE wamgr_tenants SET state = %s", (state,))
        status = store.get("t1").status
        assert (status.state, status.last_error) == (TenantState(state), "as stored"), state


def test_statuses_of_a_manager_show_a_dead_instances_tenant_as_standby(make_manager, db):
    _arrange(db, "connected", ("gw-dead", "now() - interval '1 minute'"), owner="gw-dead")
    reader = make_manager(claim_tenants=False)

    (status,) = reader.statuses()

    assert status.state is TenantState.STANDBY
    assert "gw-dead showed connected but its lease expired" in status.last_error
    assert reader.status("t1") == status
