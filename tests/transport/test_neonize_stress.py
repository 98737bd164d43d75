"""100 real neonize clients created, connected (the dial fails here) and stopped from 8
threads, 5 rounds, through the neonize transport: no host crashes, every link reports one
Closed, every thread ends, memory stays flat. (bench/neonize_stress.py runs this 20 times in
a row, and ``--no-gate`` shows the crashes the gate prevents.)
"""

from __future__ import annotations

import threading

import pytest

from wamgr.transport.base import Closed, CloseReason, LinkEvent
from wamgr.transport.neonize import NeonizeSettings, NeonizeTransport

CLIENTS, THREADS, ROUNDS = 100, 8, 5
#: The test server allows 100 connections and neonize leaks one per connect: hosts retire
#: after 20 links (production does the same with Config.neonize_host_connects).
HOST_CONNECTS = 20


class _Events:
    def __init__(self) -> None:
        self.closes: list[Closed] = []
        self.closed = threading.Event()

    def __call__(self, event: LinkEvent) -> None:
        if isinstance(event, Closed):
            self.closes.append(event)
            self.closed.set()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_hundred_clients_start_and_stop_at_once_without_a_crash(database_url, thread_baseline):
    settings = NeonizeSettings(database_url, tenants_per_host=CLIENTS, host_connects=HOST_CONNECTS)
    transport = NeonizeTransport(settings)
    problems: list[str] = []
    reasons: dict[CloseReason, int] = {}
    lock = threading.Lock()
    pause = threading.Event()

    def work(index: int, generation: int, start: threading.Barrier) -> None:
        start.wait()
        for n in range(index, CLIENTS, THREADS):
            events = _Events()
            link = transport.create_link(f"stress-{n}", None, generation, events)
            link.open()
            if n % 2:  # stopped while it starts
                pause.wait((n * 7 % 30) / 1000)
                link.close(do_logout=False)
            if not events.closed.wait(60):
                with lock:
                    problems.append(f"stress-{n}: no Closed")
                continue
            pause.wait(0.02)  # a second Closed would show here
            with lock:
                close = events.closes[0]
                reasons[close.reason] = reasons.get(close.reason, 0) + 1
                if len(events.closes) != 1:
                    problems.append(f"stress-{n}: {len(events.closes)} Closed")
                ok = close.reason is CloseReason.REQUESTED or (
                    close.reason is CloseReason.DIAL_FAILED
                    and close.detail.startswith("failed to dial")
                )
                if not ok:
                    problems.append(f"stress-{n}: {close.reason} {close.detail}")

    rss: list[int] = []
    try:
        for generation in range(1, ROUNDS + 1):
            start = threading.Barrier(THREADS)
            workers = [
                threading.Thread(target=work, args=(i, generation, start), name=f"stress-{i}")
                for i in range(THREADS)
            ]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join(120)
            for stats in transport.host_stats():
                assert stats["abandoned"] == 0, stats
            rss.append(_rss_kb())
    finally:
        transport.close()
    assert problems == []
    assert sum(reasons.values()) == CLIENTS * ROUNDS
    assert reasons.get(CloseReason.DIAL_FAILED, 0) >= CLIENTS * ROUNDS // 2
    exits = transport.exited_hosts()
    assert len(exits) >= CLIENTS * ROUNDS // (2 * HOST_CONNECTS)  # hosts did retire
    assert [code for _, code in exits if code != 0] == []  # and none of them crashed
    pause.wait(0.2)
    assert thread_baseline() == set()
    assert rss[-1] - rss[1] < 10_000, f"memory grew by round (kB): {rss}"


def _rss_kb() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0
