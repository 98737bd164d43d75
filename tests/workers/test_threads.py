"""Every thread a manager starts in its lifetime is named for wamgr and has ended after stop().

Threads are recorded as they start (not listed at one moment), so a thread that came and
went between two looks is checked too. wamgr's own threads are ``wamgr-...`` (the workers,
the lease renewer, the database pool's ``wamgr-db-...``); the one other kind allowed is
pykka's actor threads, which pykka names after the actor class.
"""

from __future__ import annotations

import queue
import threading

from wamgr.actors.base import DispatchingActor
from wamgr.events import InboundMessage, ManagerEvent
from wamgr.status import TenantState

WAIT_S = 5.0
#: A valid Standard Webhooks secret.
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#: The workers every manager with webhooks, claims and the sweeper runs.
WORKERS = {
    "wamgr-scheduler",
    "wamgr-status-writer",
    "wamgr-events",
    "wamgr-claimer",
    "wamgr-sweeper",
    "wamgr-commands",
    "wamgr-webhooks",
    "wamgr-lease-renewer",
    "wamgr-outbound",
    "wamgr-outbound-listen",
}


def _actor_classes() -> set[str]:
    found: set[str] = set()
    pending = [DispatchingActor]
    while pending:
        cls = pending.pop()
        found.add(cls.__name__)
        pending.extend(cls.__subclasses__())
    return found


def _is_actor_thread(name: str, actors: set[str]) -> bool:
    cls, _, number = name.rpartition("-")
    return cls in actors and number.isdigit()


def test_every_thread_of_a_managers_lifetime_is_named_and_gone_after_stop(
    make_manager, sim, clock, monkeypatch
):
    started: list[threading.Thread] = []
    original_start = threading.Thread.start

    def recording_start(thread: threading.Thread) -> None:
        started.append(thread)
        original_start(thread)

    monkeypatch.setattr(threading.Thread, "start", recording_start)

    mgr = make_manager(
        webhook_urls=("http://127.0.0.1:9/hook",),  # nobody listens: deliveries are retried
        webhook_secret=WEBHOOK_SECRET,
        claim_interval_s=0.05,
        sweep_interval_s=0.05,
    )
    events: queue.SimpleQueue[ManagerEvent] = queue.SimpleQueue()
    mgr.subscribe(events.put)
    mgr.connect("t1")
    jid = mgr.wait_for("t1", TenantState.CONNECTED, timeout=WAIT_S).jid
    sim.inbound(jid, "4915100000000@s.whatsapp.net", "hello")
    while not isinstance(events.get(timeout=WAIT_S), InboundMessage):
        pass
    sim.drop(jid, "network")  # the supervisor schedules a reconnect on the scheduler
    mgr.wait_for("t1", TenantState.BACKOFF, timeout=WAIT_S)
    clock.advance(3.0)
    mgr.wait_for("t1", TenantState.CONNECTED, timeout=WAIT_S)

    mgr.stop()

    names = {thread.name for thread in started}
    assert names >= WORKERS, f"missing: {WORKERS - names}"
    actors = _actor_classes()
    strangers = {
        name
        for name in names
        if not name.startswith("wamgr-") and not _is_actor_thread(name, actors)
    }
    assert strangers == set()
    for thread in started:
        thread.join(WAIT_S)
    assert [thread.name for thread in started if thread.is_alive()] == []
