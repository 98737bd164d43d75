"""The outbound sender: one worker per instance sends the queued messages of the tenants it
holds, in order, paced (:mod:`wamgr.workers.outbound_listener` wakes it when a message is
added anywhere).

Each pass of :class:`OutboundSender`:

1. records outcomes a failed pass could not write, then (every ``scan_interval_s``) expires
   the messages past their time, fails those of tenants that will not send (removed, logged
   out, in conflict, failed), counts the queue for the metrics and, now and then, deletes
   messages finished more than :data:`RETENTION_S` ago;
2. takes the tenants that became connected here since the last pass (the manager tells it
   of each, and every scan compares with all connected here): their messages caught
   ``sending`` are made ``unknown`` (their sender died mid-send: never sent twice);
3. reads the first queued message of each tenant whose lease this instance holds (a read
   of the queued messages, whatever the number of tenants) and keeps those of tenants
   connected here; pacing (:mod:`wamgr.pacing`) says which may go now (with typing on,
   "typing…" is shown first and the message goes once it has lasted);
4. marks those ``sending`` (committed), asks each tenant's actor to send its one (the actor's
   send path, so a fenced tenant cannot send; a text as ``SendText``, any other kind as its
   ``Outgoing``, a file given by URL fetched here first, within ``media_fetch_timeout``: it
   holds the pass meanwhile, and one that fails ends its message ``failed``), and records
   each outcome with its webhook event: ``sent``; back to ``queued`` if the tenant was not
   connected after all; ``unknown`` if the link failed or did not answer (it may have left).

One message per tenant per pass keeps each tenant's order and the ``unknown`` window to one
message; a pass that sent something runs again at once. Waits are on the injected clock.
"""

from __future__ import annotations

import contextlib
import queue
import time
from collections.abc import Callable

import pykka
from loguru import logger

from wamgr.actors import messages as m
from wamgr.actors.registry import TenantTable
from wamgr.clock import Clock
from wamgr.errors import ManagerStopped, MediaRefused, NotConnected, WamgrError
from wamgr.metrics import Metrics
from wamgr.pacing import Pacer, PacingSettings
from wamgr.status import TenantState
from wamgr.store.outbound import OutboundMessage, OutboundStatus, OutboundStore
from wamgr.transport.media_fetch import MediaFetcher, MediaFetchFailed
from wamgr.transport.outgoing import Presence, PresenceOut
from wamgr.workers.base import AT_ONCE, Worker

#: Seconds a file given by URL may take to fetch unless the sender is told otherwise.
DEFAULT_FETCH_TIMEOUT_S = 30.0
#: Seconds between two expiry / failure / depth passes (and the longest idle wait).
SCAN_INTERVAL_S = 1.0
#: Seconds a message is kept once it reached its final state (its idempotency key with it).
RETENTION_S = 7 * 86_400.0
#: Finished messages past the retention are deleted every this many scans.
PRUNE_EVERY = 60
#: Why a message caught ``sending`` becomes ``unknown``.
CAUGHT_SENDING = (
    "its sender stopped while sending it (crash or failover): it may or may not have been "
    "sent; resend it to send it again"
)
#: Live states in which a tenant's messages wait (the stored state may still say otherwise).
_WAITING = frozenset(
    {
        TenantState.CONNECTED,
        TenantState.CONNECTING,
        TenantState.PAIRING,
        TenantState.BACKOFF,
        TenantState.BANNED,
    }
)

#: Kinds sent without a "typing…" before them (they show nothing typed).
_NO_TYPING = frozenset({"reaction", "read", "presence"})

Outcome = tuple[str, OutboundStatus, str | None, str | None]


class OutboundSender(Worker):
    """Sends the queued messages of the connected tenants this instance runs (see above).

    ``table`` is the registry's table of this process's tenants (read without asking the
    registry); ``on_events`` is called after a pass wrote webhook events (to wake their
    delivery).
    """

    what = "outbound send pass"

    def __init__(
        self,
        store: OutboundStore,
        table: TenantTable,
        instance_id: str,
        pacing: PacingSettings,
        *,
        clock: Clock,
        call_timeout_s: float,
        metrics: Metrics | None = None,
        on_events: Callable[[], None] | None = None,
        fetcher: MediaFetcher | None = None,
        own_limits: Callable[[list[str]], dict[str, tuple[float | None, int | None]]] | None = None,
        scan_interval_s: float = SCAN_INTERVAL_S,
        name: str = "wamgr-outbound",
    ):
        super().__init__(name, clock=clock)
        self._store = store
        self._table = table
        self._me = instance_id
        self._pacer = Pacer(pacing)
        self._own_limits = own_limits  # a tenant's send_rate / send_burst, read as it connects
        self._typing = pacing.typing
        self._clock = clock
        self._timeout_s = call_timeout_s
        self._metrics = metrics
        self._on_events = on_events
        self._fetcher = fetcher or MediaFetcher(DEFAULT_FETCH_TIMEOUT_S)
        self._scan_interval_s = scan_interval_s
        self._next_scan = float("-inf")
        self._scans = 0
        self._serving: set[str] = set()  # connected tenants whose `sending` rows were checked
        self._connected: queue.SimpleQueue[str] = queue.SimpleQueue()  # told since last pass
        self._unrecorded: list[Outcome] = []  # outcomes a failed write left to record

    def iterate(self) -> float:
        """One pass (see the module docstring); returns when the next one is due."""
        now = self._clock.monotonic()
        self._record(self._unrecorded)
        scan = now >= self._next_scan
        if scan:
            self._scan({s.tenant_id for s in self._table.statuses() if s.state in _WAITING})
            self._next_scan = now + self._scan_interval_s
        self._adopt(self._newly_connected(), every=scan)
        heads = [h for h in self._store.heads(self._me) if self._table.is_active(h.tenant_id)]
        refs = {h.tenant_id: self._table.ref(h.tenant_id) for h in heads}
        go, due = self._choose(heads, refs, now)
        if go and self._send(go, refs):
            return AT_ONCE  # each tenant sent (or failed) one: the next ones may be ready
        return min([self._next_scan, *due])

    def on_stop(self) -> None:
        """Write outcomes still unrecorded (else the next holder finds them ``unknown``)."""
        with contextlib.suppress(WamgrError):
            self._record(self._unrecorded)

    # --- the steps ----------------------------------------------------------------------

    def _scan(self, waiting: set[str]) -> None:
        """Expire, fail what will not be sent, and count the queue."""
        now = self._clock.time()
        moved = self._store.expire(now) + self._store.fail_parked(now, sorted(waiting))
        self._moved(moved)
        if self._scans % PRUNE_EVERY == 0:
            self._store.prune(now - RETENTION_S)
        self._scans += 1
        if self._metrics is not None:
            count, oldest = self._store.depth()
            age = max(0.0, now - oldest.timestamp()) if oldest is not None else 0.0
            self._metrics.outbound_depth(count, age)

    def tenant_connected(self, tenant_id: str) -> None:
        """A tenant of this process became connected (any thread; never blocks): the next
        pass, run at once, adopts it and sends its queued messages."""
        self._connected.put(tenant_id)
        self.wake()

    def _newly_connected(self) -> list[str]:
        """The tenants told connected since the last pass that are still connected."""
        told: set[str] = set()
        while True:
            try:
                told.add(self._connected.get_nowait())
            except queue.Empty:
                return [t for t in sorted(told) if self._table.is_active(t)]

    def _adopt(self, told: list[str], every: bool) -> None:
        """Messages caught ``sending`` of the tenants newly connected here (``every``: of all
        connected here, and those connected the pass was not told of) become unknown:
        between two passes none of ours is in flight. Only ``every`` looks at all tenants
        (once per scan interval): a pass costs what changed, not what runs here."""
        if every:  # of all connected here, only those with a message caught sending
            connected = self._table.active()
            fresh = sorted((connected - self._serving) | set(told))
            new = sorted((connected | set(told)) & self._store.sending_tenants())
            self._serving = connected
        else:
            fresh = new = told
            self._serving.update(told)
        if self._own_limits is not None and fresh:  # once per connection, in one statement
            for tenant_id, limits in self._own_limits(fresh).items():
                self._pacer.own_limits(tenant_id, *limits)
        if new:
            keep = [o[0] for o in self._unrecorded]
            self._moved(self._store.mark_unknown(new, self._clock.time(), CAUGHT_SENDING, keep))

    def _choose(
        self, heads: list[OutboundMessage], refs: dict[str, pykka.ActorRef | None], now: float
    ) -> tuple[list[OutboundMessage], list[float]]:
        """The heads that may go now (their tokens spent), and when the others may."""
        go: list[OutboundMessage] = []
        due: list[float] = []
        for head in heads:
            tenant = head.tenant_id
            ready = max(self._pacer.ready_at(tenant, now), self._pacer.total_ready_at(now))
            if ready > now:
                due.append(ready)
                continue
            if self._typing and head.kind not in _NO_TYPING:
                typed = self._pacer.typing_done_at(tenant, head.message_id)
                if typed is None:
                    self._show_typing(head, refs.get(tenant))
                    typed = self._pacer.start_typing(tenant, head.message_id, head.text, now)
                if typed > now:
                    due.append(typed)
                    continue
            if self._pacer.take(tenant, now):
                go.append(head)
            else:  # the process-wide cap went to another tenant meanwhile
                due.append(max(self._pacer.ready_at(tenant, now), self._pacer.total_ready_at(now)))
        return go, due

    def _show_typing(self, head: OutboundMessage, ref: pykka.ActorRef | None) -> None:
        """Ask the tenant to show "typing…" to the recipient (best effort)."""
        if ref is None:
            return
        try:
            ref.ask(m.Send(PresenceOut(Presence.TYPING, head.to)), timeout=self._timeout_s)
        except Exception as exc:
            logger.bind(tenant=head.tenant_id).debug("typing not shown: {!r}", exc)

    def _send(self, heads: list[OutboundMessage], refs: dict[str, pykka.ActorRef | None]) -> bool:
        """Mark ``heads`` sending, have their tenants send them, record what became of them;
        returns whether any was sent or failed (its tenant's next message may go now)."""
        at = self._clock.time()  # the time the messages are recorded as sent
        claimed = self._store.claim([h.message_id for h in heads], self._me, at)
        asked: list[tuple[OutboundMessage, pykka.Future | Outcome | None]] = []
        for message in claimed:
            ref = refs.get(message.tenant_id)
            asked.append((message, self._ask(message, ref) if ref is not None else None))
        end = time.monotonic() + self._timeout_s
        outcomes = [
            sent if isinstance(sent, tuple) else self._outcome(message, sent, end)
            for message, sent in asked
        ]
        now = self._clock.monotonic()
        for message, (_, status, _, _) in zip(claimed, outcomes, strict=True):
            if status is OutboundStatus.SENT:
                self._pacer.sent(message.tenant_id, now)
        self._unrecorded.extend(outcomes)
        self._record(self._unrecorded, at)
        return any(o[1] in (OutboundStatus.SENT, OutboundStatus.FAILED) for o in outcomes)

    def _ask(self, message: OutboundMessage, ref: pykka.ActorRef) -> pykka.Future | Outcome:
        """Ask the tenant's actor to send ``message`` (a text as ever; any other kind as its
        Outgoing, a file given by URL fetched first); or the ``failed`` outcome of a file
        that could not be fetched or that WhatsApp would refuse (surely not sent)."""
        payload = message.payload
        if message.kind == "text" and not payload.get("quoted_id"):
            return ref.ask(m.SendText(message.to, message.text), block=False)
        try:
            outgoing = self._fetcher.outgoing(message.kind, payload, message.media)
        except (MediaFetchFailed, MediaRefused) as exc:
            return message.message_id, OutboundStatus.FAILED, None, str(exc)[:500]
        return ref.ask(m.Send(outgoing), block=False)

    def _outcome(
        self, message: OutboundMessage, future: pykka.Future | None, end: float
    ) -> Outcome:
        """What became of one send: sent, back to queued (surely not sent), or unknown."""
        log = logger.bind(tenant=message.tenant_id)
        if future is None:
            return message.message_id, OutboundStatus.QUEUED, None, None
        try:
            wa_id = future.get(timeout=max(0.0, end - time.monotonic()))
        except (NotConnected, ManagerStopped, pykka.ActorDeadError):
            return message.message_id, OutboundStatus.QUEUED, None, None
        except pykka.Timeout:
            error = f"no answer from the tenant within {self._timeout_s:g} s"
            log.warning("message {}: {}; marked unknown", message.message_id, error)
            return message.message_id, OutboundStatus.UNKNOWN, None, error
        except Exception as exc:
            error = f"the send failed: {type(exc).__name__}: {exc}"[:500]
            log.warning("message {}: {}; marked unknown", message.message_id, error)
            return message.message_id, OutboundStatus.UNKNOWN, None, error
        log.debug("message {} sent as {}", message.message_id, wa_id)
        return message.message_id, OutboundStatus.SENT, None if wa_id is None else str(wa_id), None

    def _record(self, outcomes: list[Outcome], at: float | None = None) -> None:
        """Write ``outcomes`` of sends made ``at`` (now if None); emptied once written, kept
        for the next pass if not."""
        if not outcomes:
            return
        at = self._clock.time() if at is None else at
        moved = self._store.settle(list(outcomes), self._me, at)
        outcomes.clear()
        requeued = sum(1 for o in moved if o.status is OutboundStatus.QUEUED)
        if requeued and self._metrics is not None:
            self._metrics.outbound_outcome("requeued", requeued)
        self._moved([o for o in moved if o.status is not OutboundStatus.QUEUED])

    def _moved(self, moved: list[OutboundMessage]) -> None:
        """Count messages that reached a state, and wake webhook delivery for their events."""
        if not moved:
            return
        if self._metrics is not None:
            for status in {o.status for o in moved}:
                self._metrics.outbound_outcome(str(status), sum(o.status is status for o in moved))
        for message in moved:
            if message.status is not OutboundStatus.SENT:
                logger.bind(tenant=message.tenant_id).info(
                    "message {} {}: {}", message.message_id, message.status, message.error
                )
        if self._on_events is not None:
            self._on_events()
