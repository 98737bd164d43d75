"""Commands given to an instance that does not run the tenant reach the one that does
(two managers, one database, LISTEN/NOTIFY), from Python, over HTTP and from the CLI."""

from __future__ import annotations

import threading

import pytest
from click.testing import CliRunner

from wamgr import StatusEvent, TenantState
from wamgr.cli import main

CONNECTED = TenantState.CONNECTED
STOPPED = TenantState.STOPPED


@pytest.fixture
def pair(make_manager, sim):
    """Two managers on one database; ``t1`` connected by the first (``inst-0``).

    The second starts once ``t1`` is connected: its first claim pass (which runs on its own
    thread, maybe after ``start()`` returned) then finds the lease held, rather than racing
    the first for a tenant wanted connected but not yet leased."""
    owner = make_manager()
    owner.connect("t1")
    jid = owner.wait_for("t1", CONNECTED, timeout=5).jid
    assert owner.runtime.writer.flush(5)  # the other instance reads the stored status
    other = make_manager()
    return owner, other, jid


def _next_state(mgr, tenant_id: str, state: TenantState) -> threading.Event:
    """An event set when ``mgr`` next reports ``tenant_id`` entering ``state``."""
    seen = threading.Event()

    def on_event(event) -> None:
        if (
            isinstance(event, StatusEvent)
            and event.tenant_id == tenant_id
            and event.status.state is state
        ):
            seen.set()

    mgr.subscribe(on_event)
    return seen


def _cli(database_url: str, tmp_path, *args: str):
    return CliRunner().invoke(
        main,
        ["--database-url", database_url, "--home", str(tmp_path / "home"), *args],
        prog_name="wamgr",
    )


@pytest.mark.slow
def test_reconnect_asked_of_another_instance_reconnects_on_the_owner(pair, sim) -> None:
    owner, other, _ = pair
    reconnecting = _next_state(owner, "t1", TenantState.CONNECTING)
    dials = sim.dial_attempts("t1")

    status = other.reconnect("t1")

    assert status.owner == "inst-0"  # the status the owner stored; the work is done there
    assert reconnecting.wait(10)  # a loaded host may take a while; the poll is a 5 s fallback
    owner.wait_for("t1", CONNECTED, timeout=10)
    assert sim.dial_attempts("t1") == dials + 1
    assert other.local_statuses() == []  # the other instance opened nothing
    assert sim.max_concurrent_sockets() == 1


@pytest.mark.slow
def test_disconnect_and_logout_asked_elsewhere_take_effect_on_the_owner(
    pair, make_manager, sim
) -> None:
    owner, other, jid = pair

    other.remove("t1")  # claim interval is an hour here: only the notification can do it

    assert owner.wait_for("t1", STOPPED, timeout=5).owner is None
    assert sim.logouts(jid) == 0
    assert owner.tenants_store.get("t1").desired == "stopped"

    owner.connect("t1")
    owner.wait_for("t1", CONNECTED, timeout=5)
    other.remove("t1", do_logout=True)

    assert owner.wait_for("t1", STOPPED, timeout=5).jid is None
    assert sim.logouts(jid) == 1


@pytest.mark.slow
def test_commands_over_http_to_a_non_owner_are_accepted_and_reach_the_owner(
    pair, serve_api
) -> None:
    owner, other, _ = pair
    api = serve_api(other)
    reconnecting = _next_state(owner, "t1", TenantState.CONNECTING)

    answer = api.post("/api/tenants/t1/reconnect")

    assert answer.status_code == 202
    assert answer.json()["owner"] == "inst-0"
    assert reconnecting.wait(5)
    owner.wait_for("t1", CONNECTED, timeout=5)

    assert api.post("/api/tenants/t1/disconnect").status_code == 202
    owner.wait_for("t1", STOPPED, timeout=5)


@pytest.mark.slow
def test_cli_commands_reach_the_owner(pair, database_url, tmp_path, sim) -> None:
    owner, _, jid = pair
    reconnecting = _next_state(owner, "t1", TenantState.CONNECTING)

    result = _cli(database_url, tmp_path, "reconnect", "t1")

    assert result.exit_code == 0, result.output
    assert result.stdout == "t1: reconnect sent to inst-0, which holds it\n"
    assert reconnecting.wait(5)
    owner.wait_for("t1", CONNECTED, timeout=5)

    result = _cli(database_url, tmp_path, "logout", "t1")
    assert result.stdout == "t1: logout sent to inst-0, which holds it\n"
    owner.wait_for("t1", STOPPED, timeout=5)
    assert sim.logouts(jid) == 1

    result = _cli(database_url, tmp_path, "disconnect", "t1")
    assert result.stdout == "t1: stopped (no instance runs it)\n"


def test_cli_connect_of_a_tenant_nobody_runs_is_taken_by_a_running_instance(
    make_manager, database_url, tmp_path, sim
) -> None:
    mgr = make_manager()  # its claim loop waits an hour: the notification must do it

    result = _cli(database_url, tmp_path, "connect", "new-1")

    assert result.exit_code == 0, result.output
    assert "connect sent to any running instance" in result.stdout
    assert mgr.wait_for("new-1", CONNECTED, timeout=5).owner == "inst-0"


def test_cli_connect_brings_a_tenant_back_from_conflict(make_manager, sim, database_url, tmp_path):
    mgr = make_manager()
    mgr.connect("t1")
    jid = mgr.wait_for("t1", CONNECTED, timeout=5).jid
    sim.connect_rogue(jid)
    mgr.wait_for("t1", TenantState.CONFLICT, timeout=5)
    sim.disconnect_rogue(jid)

    assert _cli(database_url, tmp_path, "connect", "t1").exit_code == 0

    assert mgr.wait_for("t1", CONNECTED, timeout=5).jid == jid


def test_cli_commands_refuse_unknown_tenants(database_url, tmp_path) -> None:
    for command in ("reconnect", "disconnect", "logout"):
        result = _cli(database_url, tmp_path, command, "ghost")
        assert result.exit_code == 3, result.output
        assert result.stderr.startswith("wamgr: unknown tenant 'ghost'")


@pytest.mark.slow
def test_no_thread_is_left_after_stop(make_manager, serve_api, thread_baseline):
    mgr = make_manager(  # nothing listens on port 9: the sender retries until stopped
        webhook_urls=("http://127.0.0.1:9/hooks",),
        webhook_secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    )
    api = serve_api(mgr)
    api.put("/api/tenants/t1")
    mgr.wait_for("t1", CONNECTED, timeout=5)
    names = {t.name for t in threading.enumerate()}
    assert {"wamgr-commands", "wamgr-webhooks", "wamgr-http"} <= names

    mgr.stop()
    api.close()

    left = {name for name in thread_baseline() if name.startswith("wamgr-")}
    assert left == {"wamgr-http"}  # the server is the test's; the manager's are all gone
