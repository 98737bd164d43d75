"""Random sequences of commands, drops and clock jumps never give an account two sockets.

A hypothesis state machine drives one manager on the simulator. After every step the
invariant holds: the simulated WhatsApp never saw two sockets at once for an account, and a
tenant that reports connected has exactly one open socket.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from psycopg.conninfo import make_conninfo

from wamgr import Config, ConnectionManager, TenantState
from wamgr.actors import messages as m
from wamgr.clock import VirtualClock
from wamgr.transport.sim import SimWhatsApp

from ..conftest import FreshDatabases

TENANTS = ["a", "b", "c"]
DROPS = ["network", "keepalive_timeout", "server_error", "logged_out", "temporary_ban"]


def _quiesce(mgr: ConnectionManager) -> None:
    """Let every mailbox drain: ask each tenant, then the registry, a few times over."""
    for _ in range(3):
        for ref in mgr.runtime.registry.ask(m.AllTenants(), timeout=5).values():
            with contextlib.suppress(Exception):
                ref.ask(m.GetStatus(), timeout=5)
        mgr.runtime.registry.ask(m.AllStatuses(), timeout=5)


class _Machine(RuleBasedStateMachine):
    server_url: str = ""
    databases: FreshDatabases

    @initialize()
    def start(self) -> None:
        self.dbname = self.databases.take()
        self.clock = VirtualClock()
        self.sim = SimWhatsApp(auto_pair=True, clock=self.clock)
        config = Config(
            database_url=make_conninfo(self.server_url, dbname=self.dbname),
            transport=self.sim,
            instance_id="sm",
            clock=self.clock,
            claim_interval_s=3600.0,
            lease_ttl_s=1e6,
            renew_deadline_s=5e5,
            renew_interval_s=1e5,
        )
        self.mgr = ConnectionManager(config).start()

    @rule(tenant=st.sampled_from(TENANTS))
    def connect(self, tenant: str) -> None:
        self.mgr.connect(tenant)

    @rule(tenant=st.sampled_from(TENANTS))
    def reconnect(self, tenant: str) -> None:
        self.mgr.reconnect(tenant)

    @rule(tenant=st.sampled_from(TENANTS), logout=st.booleans())
    def remove(self, tenant: str, logout: bool) -> None:
        self.mgr.remove(tenant, do_logout=logout)

    @rule(tenant=st.sampled_from(TENANTS), reason=st.sampled_from(DROPS))
    def drop(self, tenant: str, reason: str) -> None:
        with contextlib.suppress(Exception):
            jid = self.mgr.status(tenant).jid
            if jid:
                self.sim.drop(jid, reason, ban_expires_in_s=30.0)

    @rule()
    def hold(self) -> None:
        self.sim.hold_dials()

    @rule()
    def release(self) -> None:
        self.sim.release_dials()

    @rule(seconds=st.sampled_from([1.0, 3.0, 5.0, 31.0, 61.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @invariant()
    def one_socket_per_account(self) -> None:
        if not hasattr(self, "mgr"):
            return
        _quiesce(self.mgr)
        assert self.sim.max_concurrent_sockets() <= 1
        for status in self.mgr.statuses():
            if status.state is TenantState.CONNECTED and self.mgr.is_connection_active(
                status.tenant_id
            ):
                assert status.jid is not None
                assert self.sim.open_sockets(status.jid) == 1

    def teardown(self) -> None:
        if hasattr(self, "mgr"):
            self.sim.release_dials()
            self.mgr.stop()
            assert self.sim.open_sockets() == 0
            self.databases.give_back(self.dbname)


@pytest.mark.parametrize("examples", [5, pytest.param(25, marks=pytest.mark.slow)])
def test_no_sequence_opens_two_sockets(pg_server_url, fresh_databases, examples):
    _Machine.server_url = pg_server_url
    _Machine.databases = fresh_databases
    machine = type(f"_Machine{examples}", (_Machine,), {})  # settings apply once per class
    run = settings(
        max_examples=examples,
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )(machine).TestCase
    run().runTest()
