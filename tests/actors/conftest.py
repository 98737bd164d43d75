"""Fake services for driving one TenantActor (or the keeper) directly, without a database.

:class:`TenantRig` builds a TenantActor on a virtual clock with a fake transport, lease store,
tenant store and status writer, and recording actors standing in for the supervisor, the
lease keeper and the registry. Tests ask and tell the actor as the manager would and read
what it did from the fakes.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pykka
import pytest

from wamgr.actors import messages as m
from wamgr.actors.pool import ActorPool
from wamgr.actors.tenant import TenantActor, TenantServices
from wamgr.clock import VirtualClock
from wamgr.config import Config
from wamgr.status import TenantStatus
from wamgr.store.leases import Grant, Lease
from wamgr.transport.base import Closed, CloseReason, LinkEvent, MessageReceived


class Inbox:
    """Every message a :class:`Recorder` actor was told, for a test to wait on."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.changed = threading.Condition()
        self.ref: pykka.ActorRef = Recorder.start(self)

    def of(self, kind: type) -> list[Any]:
        """The messages of type ``kind`` received so far."""
        with self.changed:
            return [msg for msg in self.messages if isinstance(msg, kind)]

    def wait_for(self, kind: type, count: int = 1, timeout: float = 5.0) -> list[Any]:
        """Wait until ``count`` messages of type ``kind`` arrived; returns them."""
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.of(kind)) >= count, timeout):
                raise AssertionError(f"no {count} x {kind.__name__} within {timeout} s")
            return self.of(kind)


class Recorder(pykka.ThreadingActor):
    """An actor standing in for the supervisor, the keeper or the registry."""

    def __init__(self, inbox: Inbox) -> None:
        super().__init__()
        self.inbox = inbox

    def on_receive(self, message: Any) -> None:
        with self.inbox.changed:
            self.inbox.messages.append(message)
            self.inbox.changed.notify_all()


class FakeLink:
    """A link that records what it is asked; ``close`` reports Closed at once unless the
    transport defers closes (then :meth:`finish_close` does)."""

    def __init__(self, transport: FakeTransport, tenant_id: str, jid, generation, on_event):
        self.transport = transport
        self.tenant_id = tenant_id
        self.jid = jid
        self.generation = generation
        self.on_event = on_event
        self.opened = False
        self.closes: list[tuple[bool, str]] = []  # (do_logout, thread name)
        self.closed = False
        self._lock = threading.Lock()

    def open(self) -> None:
        if self.transport.fail_open:
            raise RuntimeError("cannot open")
        with self._lock:
            if self.closed:
                raise RuntimeError("closed before it opened")
            self.opened = True

    def close(self, do_logout: bool) -> None:
        with self._lock:
            self.closes.append((do_logout, threading.current_thread().name))
            if self.closed or self.transport.defer_closes:
                return
            self.closed = True
        self.on_event(Closed(self.generation, CloseReason.REQUESTED, ""))

    def finish_close(self, reason: CloseReason = CloseReason.REQUESTED, detail: str = "") -> None:
        """Report the Closed of a deferred close (or a close by the other side)."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
        self.on_event(Closed(self.generation, reason, detail))

    def emit(self, event: LinkEvent) -> None:
        self.on_event(event)

    def send_text(self, to: str, text: str) -> str:
        return "msg-1"

    def request_pair_code(self, phone: str) -> str:
        return "1234-5678"


class FakeTransport:
    """Makes FakeLinks and records credentials cleared."""

    def __init__(self) -> None:
        self.links: list[FakeLink] = []
        self.cleared: list[tuple[str, str | None]] = []
        self.defer_closes = False
        self.fail_open = False

    def create_link(self, tenant_id, jid, generation, on_event, proxy=None) -> FakeLink:
        link = FakeLink(self, tenant_id, jid, generation, on_event)
        self.links.append(link)
        return link

    def clear_auth(self, tenant_id: str, jid: str | None) -> None:
        self.cleared.append((tenant_id, jid))

    def close(self) -> None:
        pass


class FakeLeases:
    """A lease store in memory; ``held_by`` makes grants fail, ``answer_after_s`` makes each
    take() advance the clock (its answer arrives that late)."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.tokens = itertools.count(1)
        self.current: dict[str, Lease] = {}
        self.held_by: str | None = None
        self.previous_owner: str | None = None
        self.answer_after_s = 0.0
        self.released: list[tuple[str, int]] = []

    def take(self, tenant_id: str, owner: str, ttl_s: float) -> Grant | None:
        self.clock.advance(self.answer_after_s)
        if self.held_by is not None:
            self.current[tenant_id] = Lease(tenant_id, self.held_by, 999, datetime.now(UTC))
            return None
        token = next(self.tokens)
        self.current[tenant_id] = Lease(tenant_id, owner, token, datetime.now(UTC))
        return Grant(token, self.previous_owner)

    def acquire(self, tenant_id: str, owner: str, ttl_s: float) -> int | None:
        grant = self.take(tenant_id, owner, ttl_s)
        return grant.token if grant is not None else None

    def holder(self, tenant_id: str) -> Lease | None:
        return self.current.get(tenant_id)

    def release(self, tenant_id: str, token: int) -> bool:
        self.released.append((tenant_id, token))
        lease = self.current.get(tenant_id)
        if lease is not None and lease.token == token:
            del self.current[tenant_id]
            return True
        return False


class FakeTenants:
    """The tenants table: the stored JID only."""

    def __init__(self) -> None:
        self.jids: dict[str, str | None] = {}

    def get(self, tenant_id: str) -> None:
        return None

    def set_jid(self, tenant_id: str, jid: str | None) -> None:
        self.jids[tenant_id] = jid


class FakeWriter:
    """Keeps every status submitted."""

    def __init__(self) -> None:
        self.written: list[tuple[TenantStatus, str | None]] = []

    def submit(self, status: TenantStatus, old_state: str | None) -> None:
        self.written.append((status, old_state))


class TenantRig:
    """One TenantActor ("t1") with fake services; see the module docstring."""

    def __init__(self, **config: Any) -> None:
        settings: dict[str, Any] = {
            "transport": "sim",
            "instance_id": "me",
            "lease_ttl_s": 30.0,
            "renew_interval_s": 10.0,
            "renew_deadline_s": 20.0,
        }
        settings.update(config)
        self.config = Config(**settings)
        self.clock = VirtualClock()
        self.transport = FakeTransport()
        self.leases = FakeLeases(self.clock)
        self.tenants = FakeTenants()
        self.writer = FakeWriter()
        self.inbound: list[MessageReceived] = []
        self.on_inbound: Callable[[str, MessageReceived], None] = self._record_inbound
        self.supervisor = Inbox()
        self.keeper = Inbox()
        self.registry = Inbox()
        self.pool = ActorPool("test-tenant")
        services = TenantServices(
            config=self.config,
            clock=self.clock,
            transport=self.transport,  # type: ignore[arg-type]
            tenants=self.tenants,  # type: ignore[arg-type]
            leases=self.leases,  # type: ignore[arg-type]
            writer=self.writer,  # type: ignore[arg-type]
            supervisor=self.supervisor.ref,
            keeper=self.keeper.ref,
            on_inbound=lambda tenant, message: self.on_inbound(tenant, message),
            pool=self.pool,
        )
        self.tenant = TenantActor.start("t1", services, self.registry.ref)

    def _record_inbound(self, tenant_id: str, message: MessageReceived) -> None:
        self.inbound.append(message)

    def ask(self, message: Any) -> Any:
        return self.tenant.ask(message, timeout=5)

    def tell(self, message: Any) -> None:
        self.tenant.tell(message)

    def status(self) -> TenantStatus:
        """The tenant's status, once every message told before has been handled."""
        return self.ask(m.GetStatus())

    @property
    def link(self) -> FakeLink:
        return self.transport.links[-1]

    def stop(self) -> None:
        for ref in (self.tenant, self.supervisor.ref, self.keeper.ref, self.registry.ref):
            ref.stop()
        self.pool.stop(5.0)


@pytest.fixture
def rig() -> Iterator[TenantRig]:
    """A TenantActor with fake services (see TenantRig); stopped at the end."""
    made = TenantRig()
    yield made
    made.stop()


@pytest.fixture
def make_rig() -> Iterator[Callable[..., TenantRig]]:
    """Build TenantRigs with config overrides; every one is stopped at the end."""
    made: list[TenantRig] = []

    def make(**config: Any) -> TenantRig:
        made.append(TenantRig(**config))
        return made[-1]

    yield make
    for one in made:
        one.stop()
