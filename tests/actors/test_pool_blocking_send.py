"""The tenants' pool runs one thread; a handler that blocks does not hold the others up.

A send waits on the network inside the tenant's handler. The pool adds a thread once turns
have waited ``GROW_AFTER_S`` with none finishing, so another tenant's send goes through
while the first still waits (through the manager's public API, against PostgreSQL).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from wamgr import TenantState
from wamgr.transport.sim import SimWhatsApp
from wamgr.transport.sim_link import SimLink

WAIT = 5.0


class SlowSends(SimWhatsApp):
    """A simulator whose links of tenant ``slow`` block in ``send_text`` until ``gate``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gate = threading.Event()
        self.entered = threading.Event()

    def create_link(self, tenant_id: str, *args: Any, **kwargs: Any) -> SimLink:
        link = super().create_link(tenant_id, *args, **kwargs)
        if tenant_id == "slow":
            send_text = link.send_text

            def blocking_send_text(to: str, text: str) -> str:
                self.entered.set()
                assert self.gate.wait(WAIT), "the test never let the send go"
                return send_text(to, text)

            link.send_text = blocking_send_text  # type: ignore[method-assign]
        return link


def test_a_send_blocked_on_the_network_does_not_hold_up_another_tenants_send(
    make_manager, clock
) -> None:
    sim = SlowSends(auto_pair=True, clock=clock)
    mgr = make_manager(transport=sim)
    for tenant in ("slow", "quick"):
        mgr.connect(tenant)
        mgr.wait_for(tenant, TenantState.CONNECTED, timeout=WAIT)
    assert mgr.runtime.pool.threads == 1  # quick turns run on one thread
    blocked: list[object] = []
    sender = threading.Thread(
        target=lambda: blocked.append(mgr.send_text("slow", "15550001111", "hi", timeout=WAIT))
    )
    sender.start()
    try:
        assert sim.entered.wait(WAIT)
        began = time.monotonic()
        assert mgr.send_text("quick", "15550002222", "hello", timeout=WAIT)
        took = time.monotonic() - began
        assert not blocked  # the slow send still waits: the quick one did not queue behind it
        assert took < 2.0, f"the quick send waited {took:.2f} s behind the blocked one"
        assert mgr.runtime.pool.threads >= 2
    finally:
        sim.gate.set()
        sender.join(WAIT)
    assert blocked and blocked[0]
