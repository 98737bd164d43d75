"""The call runners: every call submitted runs once, a slow call does not hold up the others,
and one that raises is contained."""

from __future__ import annotations

import threading

from wamgr.store.calls import PendingCall
from wamgr.workers.call_runners import CallRunners

WAIT_S = 5.0


def _call(n: int, tenant_id: str = "t1") -> PendingCall:
    return PendingCall(f"call-{n}", tenant_id, "qr", {}, "inst-1", 5.0)


def test_every_call_runs_once_and_a_slow_one_holds_up_no_other(logs):
    release = threading.Event()
    ran: list[str] = []
    all_fast_done = threading.Event()

    def serve(call: PendingCall) -> None:
        if call.tenant_id == "slow":
            release.wait(WAIT_S)
        if call.tenant_id == "bad":
            raise RuntimeError("boom")
        ran.append(call.id)
        if len(ran) == 20:
            all_fast_done.set()

    runners = CallRunners(serve, runners=2)
    runners.start()
    try:
        runners.submit([_call(0, "slow"), _call(1, "bad")])
        runners.submit([_call(n) for n in range(2, 22)])

        assert all_fast_done.wait(WAIT_S)  # while the slow one still runs
        release.set()
    finally:
        assert runners.stop(WAIT_S)
    assert sorted(ran) == sorted([f"call-{n}" for n in range(2, 22)] + ["call-0"])
    assert any("forwarded qr from inst-1 failed" in line for line in logs)
