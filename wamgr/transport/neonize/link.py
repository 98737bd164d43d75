"""NeonizeLink: one neonize client's life for one tenant, inside a neonize host process.

``NewClient.connect()`` blocks for the client's whole life, and neonize calls back on its
own worker thread. So each link has:

- a *runner* thread that checks the device, builds the client and calls ``connect()``
  (taking the :class:`~wamgr.transport.neonize.gate.StartHold` first);
- neonize's worker thread, which runs Go and our callbacks; the callbacks only put what
  they got on the link's inbox (they must not block Go's event channel);
- a *control* thread that reads the inbox in order, reports events, and on the first
  close signal tears the client down, then reports ``Closed``.

What each signal means (report it, ignore it, or close for which reason) is the table in
``events.py`` (:data:`~wamgr.transport.neonize.events.TABLE`); this module only applies it.
wamgr's supervisor is the only reconnect authority: on any close the table names, the link
runs ``disconnect`` → ``is_connected`` check → ``stop`` and reports ``Closed(reason)`` only
after ``stop`` returned, so whatsmeow's own auto-reconnect never keeps a second socket beside
the next link. Go is never called for a client after its ``stop``.
"""

from __future__ import annotations

import ctypes
import enum
import itertools
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loguru import logger

from wamgr.errors import DatabaseUnavailable
from wamgr.tenant_settings import mask_url
from wamgr.transport.base import (
    Closed,
    CloseReason,
    Connected,
    EventCallback,
    LinkEvent,
    MessageReceived,
    Paired,
    Qr,
    Undecryptable,
)
from wamgr.transport.neonize import events as nev
from wamgr.transport.neonize.auth import DeviceStore
from wamgr.transport.neonize.gate import GoGate, StartHold
from wamgr.transport.neonize.jids import device_jid, jid_string
from wamgr.transport.neonize.lib import (
    ClientFactory,
    ClientName,
    NeonizeError,
    ProxySettings,
    make_client,
)
from wamgr.transport.neonize.messages import RecentMessages
from wamgr.transport.neonize.outgoing import send_outgoing
from wamgr.transport.neonize.stats import HostStats
from wamgr.transport.outgoing import Outgoing, TextOut

# A thread that parks here never returns to Go (see _on_login_status).
_NEVER = threading.Event()


class LinkNotReady(RuntimeError):
    """The link cannot do that in its current state (not connected, not pairing, closed)."""


@dataclass
class LinkSettings:
    """Timings of a link's teardown (seconds)."""

    #: After a link that had a socket closes, check this many times, this far apart, that
    #: no whatsmeow auto-reconnect brought a socket back before ``stop``.
    recheck_count: int = 2
    recheck_interval_s: float = 0.5
    #: How long to wait for ``connect()`` to return after ``stop`` before abandoning it
    #: (it never returns for a pairing that was stopped: whatsmeow leaves the QR loop open).
    abandon_after_s: float = 5.0


class _State(enum.Enum):
    NEW = "new"
    STARTING = "starting"  # device check, client built, waiting for the gate, dialling
    PAIRING = "pairing"  # a QR was shown
    CONNECTED = "connected"
    CLOSED = "closed"  # Closed reported (or being reported)


_link_numbers = itertools.count(1)


class NeonizeLink:
    """A link whose socket is a neonize client in this process."""

    def __init__(
        self,
        *,
        tenant_id: str,
        jid: str | None,
        generation: int,
        on_event: EventCallback,
        store_url: str,
        gate: GoGate,
        devices: DeviceStore,
        client_factory: ClientFactory = make_client,
        settings: LinkSettings | None = None,
        stats: HostStats | None = None,
        wall_clock: Callable[[], float] = time.time,
        proxy: str | None = None,
    ):
        self.tenant_id = tenant_id
        self.generation = generation
        self.uuid = f"{tenant_id}#{generation}#{next(_link_numbers)}"
        self._jid = jid
        self._on_event = on_event
        self._store_url = store_url
        self._gate = gate
        self._devices = devices
        self._client_factory = client_factory
        self._settings = settings or LinkSettings()
        self._stats = stats or HostStats()
        self._wall_clock = wall_clock
        self._proxy = proxy  # given to connect(): whatsmeow dials through it
        self._recent = RecentMessages()  # inbound messages: media download, quoting
        self._log = logger.bind(tenant=tenant_id)
        # signals in arrival order: neonize events and events.py's own signals
        self._inbox: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._hold = StartHold(gate)
        self._returned = threading.Event()
        self._wake = threading.Event()  # never set: waits that only pace the teardown
        # guarded by _lock
        self._lock = threading.Lock()
        self._state = _State.NEW
        self._closing = False  # a close signal was taken: no new Go start
        self._go_started = False  # connect() was called (decided under the gate)
        self._stopped = False  # stop() ran (set under the exclusive gate)
        self._had_socket = False  # Connect() got through at least once (QR or login)
        self.client: Any = None

    # --- the Link protocol ------------------------------------------------------------

    def open(self) -> None:
        """Start the client without blocking; events follow through ``on_event``."""
        with self._lock:
            if self._state is not _State.NEW:
                raise RuntimeError("a link opens once")
            self._state = _State.STARTING
        self._stats.add("open_links")
        threading.Thread(
            target=self._control, name=f"wamgr-neonize-{self.uuid}", daemon=True
        ).start()
        threading.Thread(
            target=self._run_client, name=f"wamgr-neonize-run-{self.uuid}", daemon=True
        ).start()

    def close(self, do_logout: bool) -> None:
        """Tear the client down (unlinking it first if asked and logged in); ``Closed`` follows."""
        with self._lock:
            if self._state is _State.NEW:
                self._state = _State.CLOSED
                opened = False
            else:
                opened = True
        if opened:
            self._inbox.put(nev.CloseAsked(do_logout))
        else:
            self._emit(Closed(self.generation, CloseReason.REQUESTED, "closed before it opened"))

    def send_text(self, to: str, text: str) -> str:
        """Send ``text`` to ``to`` (phone digits or a JID); returns the message id."""
        return str(self.send(TextOut(to, text)))

    def send(self, message: Outgoing) -> str | None:
        """Send any outgoing message (``outgoing.py`` maps each kind to neonize's calls)."""
        with self._lock:
            if self._state is not _State.CONNECTED or self._closing:
                raise LinkNotReady(f"not connected ({self._state.value})")
        with self._gate.shared():
            if self._stopped:
                raise LinkNotReady("not connected (closed)")
            return send_outgoing(self.client, message, self._recent)

    def download_media(self, message_id: str) -> tuple[bytes, str]:
        """The media of inbound ``message_id`` (one of the last this link received)."""
        item = self._recent.get(message_id)
        if item is None or item.mime is None:
            raise LookupError(f"no media of message {message_id} among the last ones received")
        with self._gate.shared():
            if self._stopped:
                raise LookupError("the link is closed")
            return bytes(self.client.download_any(item.message.Message) or b""), item.mime

    def request_pair_code(self, phone: str) -> str:
        """A code to type on phone ``phone`` (digits, country code first) instead of the QR."""
        with self._lock:
            if self._state is not _State.PAIRING or self._closing:
                raise LinkNotReady(f"the link is not waiting for pairing ({self._state.value})")
        with self._gate.shared():
            if self._stopped:
                raise LinkNotReady("the link is not waiting for pairing (closed)")
            return str(
                self.client.PairPhone(
                    phone, show_push_notification=True, client_name=ClientName.LINUX
                )
            )

    # --- the runner: device check, client, connect() ------------------------------------

    def _run_client(self) -> None:
        try:
            if self._jid is not None and not self._devices.device_exists(self._jid):
                self._inbox.put(nev.DeviceMissing(self._jid))
                return
            client = self._client_factory(self._store_url, self.uuid, self._jid is None)
            if self._jid is not None:
                # Set after construction: given to NewClient, the JID would become the Go
                # map key (the bare phone number), shared by every link of the tenant.
                client.jid = device_jid(self._jid)
            self._instrument(client)
            self.client = client
        except DatabaseUnavailable as exc:
            self._inbox.put(nev.ConnectRaised(exc.detail))
            return
        except Exception as exc:
            self._log.opt(exception=exc).warning("building the neonize client failed")
            self._inbox.put(nev.ConnectRaised(f"{type(exc).__name__}: {exc}"))
            return
        self._hold.take()
        with self._lock:
            if self._closing:  # closed while waiting for the gate: never start Go
                self._hold.release()
                self._returned.set()
                self._inbox.put(nev.ConnectReturned())
                return
            self._go_started = True
        self._stats.add("connects")
        ended: object = nev.ConnectReturned()
        try:
            # neonize applies the proxy before it dials (set_proxy_address needs a running client)
            client.connect(ProxySettings(proxy_address=self._proxy) if self._proxy else None)
        except NeonizeError as exc:
            self._stats.add("dial_failures")
            through = f" (through proxy {mask_url(self._proxy)})" if self._proxy else ""
            ended = nev.ConnectRaised(f"{exc}{through}")
        except Exception as exc:
            ended = nev.ConnectRaised(f"{type(exc).__name__}: {exc}")
        finally:
            self._hold.release()
            self._returned.set()
        self._inbox.put(ended)

    def _instrument(self, client: Any) -> None:
        """Register handlers and wrap neonize's three Go→Python entry points (before connect)."""

        def on_event(_client: Any, message: Any) -> None:
            self._inbox.put(message)

        for event_class in nev.SUBSCRIBED:
            client.event(event_class)(on_event)  # a plain function: held strongly
        original = client.event.execute

        def execute(uuid: Any, binary: int, size: int, code: int) -> None:
            try:
                if code == 0:  # Device: Go has read its maps for this client; they are ours
                    self._had_socket = True
                    self._hold.release()
                original(uuid, binary, size, code)
            except Exception:
                self._log.opt(exception=True).warning("neonize event {} could not be handled", code)

        client.event.execute = execute

        def on_qr(_client: Any, data: bytes) -> None:
            self._had_socket = True
            self._hold.release()  # Neonize is parked in the QR loop, past its map writes
            self._inbox.put(nev.QrShown(data.decode(errors="replace")))

        client.qr(on_qr)
        client._NewClient__onLoginStatus = self._on_login_status

    def _on_login_status(self, _uuid: int, status_pointer: int) -> None:
        """The QR loop ended (on neonize's thread, inside Go's call)."""
        status = ctypes.string_at(status_pointer).decode(errors="replace")
        if status == "success":
            # Go reads its maps next (CallbackFunction, FetchMe): hold the gate until the
            # code-0 event, unless the client was stopped meanwhile: then the map entry is
            # gone and FetchMe would crash the process, so this thread never goes back.
            self._hold.take()
            with self._lock:
                stopped = self._stopped
            if stopped:
                self._hold.release()
                _NEVER.wait()
            return
        # Timeout or error: Go would read the maps unguarded and then wait forever for a
        # device ID that never comes. Report the close and never go back to Go.
        self._inbox.put(nev.LoginEnded(status))
        _NEVER.wait()

    # --- the control thread -------------------------------------------------------------

    def _control(self) -> None:
        closed: Closed | None = None
        do_logout = False
        while closed is None:
            signal = self._inbox.get()
            try:
                closed = self._apply(signal)
            except Exception:
                self._log.exception("handling {} failed", type(signal).__name__)
            if closed is not None and isinstance(signal, nev.CloseAsked):
                do_logout = signal.do_logout
        try:
            self._teardown(do_logout)
        except Exception:
            self._log.exception("tearing the neonize client down failed")
        self._flush_messages()
        with self._lock:
            self._state = _State.CLOSED
        self._stats.add("open_links", -1)
        self._emit(closed)

    def _apply(self, signal: object) -> Closed | None:
        """Report what the event table says ``signal`` means; returns the ``Closed`` to report
        once the client is torn down, if the signal ends the link."""
        event = nev.translate(signal, self._facts())
        match event:
            case None:
                return None
            case Closed():
                with self._lock:
                    self._closing = True  # from now on the runner never starts Go
                if event.reason is not CloseReason.REQUESTED:
                    self._log.debug("closing: {} {}", event.reason, event.detail)
                return event
            case Qr():
                with self._lock:
                    self._state = _State.PAIRING
            case Paired(jid=jid):
                self._jid = jid
                self._log.info("paired as {}", jid)
            case Connected():
                with self._lock:
                    self._state = _State.CONNECTED
            case MessageReceived():
                self._recent.add(signal)
        self._emit(event)
        return None

    def _facts(self) -> nev.LinkFacts:
        return nev.LinkFacts(self.generation, self._jid or self._me() or "", self._wall_clock())

    def _teardown(self, do_logout: bool) -> None:
        """disconnect → is_connected check → stop; then wait (bounded) for connect() to end."""
        with self._gate.shared():  # waits out a dial in progress (its start hold)
            started = self._go_started
            client = self.client
            if started and do_logout and client.is_connected and client.is_logged_in:
                try:
                    client.logout()
                    self._log.info("device unlinked (logout)")
                except Exception as exc:
                    self._log.warning("logout failed: {}", exc)
            if started:
                client.disconnect()
        if not started:
            return
        if self._had_socket:
            # whatsmeow may have been about to auto-reconnect; a socket it opened after our
            # disconnect would survive stop() unreachable. Check, and disconnect again.
            for _ in range(self._settings.recheck_count):
                self._wake.wait(self._settings.recheck_interval_s)
                with self._gate.shared():
                    if client.is_connected:
                        self._log.warning("whatsmeow reconnected during teardown; disconnecting")
                        client.disconnect()
        with self._gate.exclusive():
            client.stop()
            with self._lock:
                self._stopped = True
        if not self._returned.wait(self._settings.abandon_after_s):
            self._stats.add("abandoned")
            self._log.warning(
                "neonize's connect() did not return after stop; abandoning its thread"
            )

    def _flush_messages(self) -> None:
        """Report messages that arrived before the client stopped (they are acked already)."""
        while True:
            try:
                signal = self._inbox.get_nowait()
            except queue.Empty:
                return
            event = nev.translate(signal, self._facts())
            if isinstance(event, MessageReceived | Undecryptable):
                self._emit(event)

    def _me(self) -> str | None:
        me = getattr(self.client, "me", None)
        if me is None or not me.HasField("JID"):
            return None
        return jid_string(me.JID)

    def _emit(self, event: LinkEvent) -> None:
        try:
            self._on_event(event)
        except Exception:
            self._log.exception("reporting {!r} failed", event)

    def __repr__(self) -> str:
        return f"NeonizeLink(uuid={self.uuid!r}, state={self._state.value})"
