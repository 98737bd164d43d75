"""The tenants table: adding a tenant says whether this call created it."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from wamgr.status import Desired
from wamgr.store.db import Database
from wamgr.store.tenants import TenantStore


@pytest.fixture
def tenants(database_url):
    database = Database(database_url, max_size=25)
    database.open()
    yield TenantStore(database)
    database.close()


def test_of_20_concurrent_adds_of_one_tenant_exactly_one_creates_it(tenants) -> None:
    callers = 20
    start = threading.Barrier(callers)

    def add(_: int) -> bool:
        start.wait(timeout=10)
        return tenants.add("new")

    with ThreadPoolExecutor(callers) as pool:
        created = list(pool.map(add, range(callers)))

    assert created.count(True) == 1
    record = tenants.get("new")
    assert record is not None and record.desired is Desired.CONNECTED


def test_adding_a_known_tenant_changes_nothing(tenants) -> None:
    tenants.set_desired("t1", Desired.CONNECTED)
    tenants.set_desired("t1", Desired.STOPPED)

    assert tenants.add("t1") is False
    record = tenants.get("t1")
    assert record is not None and record.desired is Desired.STOPPED
