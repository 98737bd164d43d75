"""Fixtures for the transports.

The simulator (at the end): a ``sim`` that is closed after the test, and helpers that open
links and record their events. The neonize transport: a neonize client whose Go calls are
played in Python, events fed as Go feeds them, a manager whose tenant is connected through
such a client, and helpers that write what whatsmeow and wamgr store.

``FakeGoClient`` is a real ``neonize.client.NewClient`` (so registration, the event decoder
and the QR / login-status entry points are neonize's own) with the calls into Go replaced:
``connect()`` shows a QR (new device) or delivers the code-0 ``Device`` event (a resumed
one) and then blocks until ``stop()``, as ``Neonize`` does.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest

from wamgr.clock import VirtualClock
from wamgr.transport.base import Closed, LinkEvent, Paired
from wamgr.transport.neonize.auth import store_url
from wamgr.transport.sim import SimLink, SimWhatsApp

#: A device JID as whatsmeow stores it (user:device@server).
JID = "15550001111:7@s.whatsapp.net"
OTHER_JID = "15550003333:4@s.whatsapp.net"


@dataclass
class Script:
    """How the fake Go side behaves for the next clients."""

    dial_error: str | None = None
    logged_in: bool = True  # is_logged_in of a resumed device
    media: bytes = b""  # what download_any returns


@dataclass
class FakeNeonize:
    """A LocalNeonizeTransport whose clients are FakeGoClients, and those clients."""

    transport: Any
    script: Script
    clients: list[Any] = field(default_factory=list)
    built: threading.Condition = field(default_factory=threading.Condition)

    def client(self, index: int = -1, count: int | None = None, timeout: float = 5.0) -> Any:
        """The ``index``-th client built, waiting until ``count`` (default index+1) exist and
        that client was told to connect: the link registers its event handlers in between,
        and an event fed before that would reach none."""
        need = count if count is not None else (index + 1 if index >= 0 else 1)
        end = time.monotonic() + timeout
        with self.built:
            assert self.built.wait_for(lambda: len(self.clients) >= need, timeout), (
                f"only {len(self.clients)} neonize clients were built"
            )
            client = self.clients[index]
        while "connect" not in client.calls:
            assert time.monotonic() < end, "the neonize client was never told to connect"
            time.sleep(0.002)
        return client


def feed(client: Any, message: Any) -> None:
    """Deliver ``message`` to ``client`` as goneonize's CallbackFunction does."""
    from wamgr.transport.neonize.lib import EVENT_TO_INT

    code = 0 if type(message).__name__ == "Device" else EVENT_TO_INT[type(message)]
    data = message.SerializePartialToString()
    buffer = ctypes.create_string_buffer(data, len(data) or 1)
    client.event.execute(client.uuid, ctypes.addressof(buffer), len(data), code)


def login_status(client: Any, status: str) -> threading.Thread:
    """Run the login-status callback on its own thread (it may never return, as in Go)."""
    buffer = ctypes.create_string_buffer(status.encode())
    thread = threading.Thread(
        target=client._NewClient__onLoginStatus,
        args=(client.uuid, ctypes.addressof(buffer)),
        name=f"fake-go-login-{status}",
        daemon=True,
    )
    thread._buffer = buffer  # type: ignore[attr-defined]  # keep it alive
    thread.start()
    return thread


def jid_proto(jid: str) -> Any:
    from wamgr.transport.neonize.jids import device_jid

    return device_jid(jid)


def neonize_events() -> Any:
    """neonize's event classes (neonize.events), loaded through wamgr's lib."""
    from wamgr.transport.neonize.lib import neonize_events as events

    return events


def neonize_proto() -> Any:
    """neonize's protobuf module of event parts (Neonize_pb2)."""
    import importlib

    import wamgr.transport.neonize.lib  # noqa: F401  # loads neonize quietly, before its modules

    return importlib.import_module("neonize.proto.Neonize_pb2")


def pair(client: Any, jid: str) -> None:
    """What Go does when the phone scans the QR: login status success, Device, PairSuccess,
    Connected (after whatsmeow's 515 reconnect)."""
    ev = neonize_events()
    thread = login_status(client, "success")
    thread.join(5)
    assert not thread.is_alive()
    feed(client, neonize_proto().Device(JID=jid_proto(jid)))
    feed(client, ev.PairStatusEv(Status=ev.PairStatusEv.SUCCESS, ID=jid_proto(jid)))
    feed(client, ev.ConnectedEv(status=True))


def store_jid(database_url: str, tenant_id: str, jid: str) -> None:
    """Tenant ``tenant_id`` wants to be connected and has device ``jid`` (as after pairing)."""
    from wamgr.status import Desired
    from wamgr.store.db import Database
    from wamgr.store.tenants import TenantStore

    db = Database(database_url)
    db.open()
    try:
        store = TenantStore(db)
        store.set_desired(tenant_id, Desired.CONNECTED)
        store.set_jid(tenant_id, jid)
    finally:
        db.close()


def insert_device(database_url: str, jid: str) -> None:
    """A whatsmeow_device row for ``jid`` (only the columns a link's check reads; the table is
    created if whatsmeow has not yet; keys are random)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS whatsmeow_device (jid text PRIMARY KEY, lid text,"
            " registration_id bigint NOT NULL, noise_key bytea NOT NULL,"
            " identity_key bytea NOT NULL)"
        )
        conn.execute(
            "INSERT INTO whatsmeow_device (jid, registration_id, noise_key, identity_key)"
            " VALUES (%s, 1, %s, %s) ON CONFLICT DO NOTHING",
            (jid, os.urandom(32), os.urandom(32)),
        )


def _fake_client_class() -> type:
    from neonize.proto.Neonize_pb2 import Device, SendResponse

    from wamgr.transport.neonize.lib import NeonizeError, NewClient

    class FakeGoClient(NewClient):
        """NewClient with Go played in Python; ``calls`` records every Go-bound call."""

        def __init__(self, store: str, uuid: str, new_device: bool, script: Script):
            super().__init__(store, uuid=uuid, new_device=new_device)
            self._stop_finalizer.detach()
            self.script = script
            self.calls: list[str] = []
            self.connect_args: tuple[str | None, bool] | None = None
            self.stopped = threading.Event()
            self.socket_up = False
            self.sent: list[tuple[str, str]] = []
            self.messages: list[tuple[str, Any]] = []  # every message sent, as built
            self.proxy_settings: Any = None  # what connect() was given

        def connect(self, proxy_settings: Any = None) -> None:
            from wamgr.transport.neonize.jids import jid_string

            self.calls.append("connect")
            self.proxy_settings = proxy_settings
            self.connect_args = (jid_string(self.jid) if self.jid else None, self.new_device)
            if self.script.dial_error:
                raise NeonizeError(self.script.dial_error)
            self.socket_up = True
            if self.new_device:
                self.event._qr(self, b"2@fake-qr,noise,identity,adv")
            else:
                feed(self, Device(JID=self.jid, PushName="shop"))
            self.stopped.wait()

        def stop(self) -> None:
            self.calls.append("stop")
            self.socket_up = False
            self.stopped.set()

        def disconnect(self) -> None:
            self.calls.append("disconnect")
            self.socket_up = False

        @property
        def is_connected(self) -> bool:
            self.calls.append("is_connected")
            return self.socket_up

        @property
        def is_logged_in(self) -> bool:
            self.calls.append("is_logged_in")
            return self.socket_up and self.script.logged_in

        def logout(self) -> None:
            self.calls.append("logout")
            self.socket_up = False

        def send_message(self, to: Any, message: Any, *args: Any, **kwargs: Any) -> Any:
            self.calls.append("send_message")
            self.sent.append((f"{to.User}@{to.Server}", message.conversation))
            self.messages.append((f"{to.User}@{to.Server}", message))
            return SendResponse(ID=f"3EB0{len(self.sent):04d}")

        # neonize's builders upload media to WhatsApp; played here: the message they build.
        def _built(self, field: str, **values: Any) -> Any:
            from wamgr.transport.neonize.lib import E2EMessage

            self.calls.append(f"build {field}")
            message = E2EMessage()
            getattr(message, field).SetInParent()
            for name, value in values.items():
                setattr(getattr(message, field), name, value)
            return message

        def build_image_message(self, file: bytes, caption: Any = None, **kw: Any) -> Any:
            return self._built("imageMessage", caption=caption or "", fileLength=len(file))

        def build_video_message(self, file: bytes, caption: Any = None, **kw: Any) -> Any:
            return self._built("videoMessage", caption=caption or "", fileLength=len(file))

        def build_audio_message(self, file: bytes, ptt: bool = False, **kw: Any) -> Any:
            return self._built("audioMessage", PTT=ptt, fileLength=len(file))

        def build_document_message(self, file: bytes, caption: Any = None, **kw: Any) -> Any:
            return self._built(
                "documentMessage",
                caption=caption or "",
                fileName=kw.get("filename") or "",
                mimetype=kw.get("mimetype") or "",
                fileLength=len(file),
            )

        def build_sticker_message(self, file: bytes, passthrough: bool = False, **kw: Any) -> Any:
            assert passthrough, "wamgr sends webp stickers as they are"
            return self._built("stickerMessage", fileLength=len(file))

        def build_reaction(self, chat: Any, sender: Any, message_id: str, reaction: str) -> Any:
            from wamgr.transport.neonize.lib import E2EMessage

            self.calls.append(f"build_reaction {sender.User} {message_id} {reaction}")
            message = E2EMessage()
            message.reactionMessage.key.ID = message_id
            message.reactionMessage.text = reaction
            return message

        def mark_read(self, *ids: str, chat: Any, sender: Any, receipt: Any, **kw: Any) -> None:
            self.calls.append(f"mark_read {' '.join(ids)} {chat.User} {receipt.name}")

        def send_presence(self, presence: Any) -> None:
            self.calls.append(f"send_presence {presence.name}")

        def send_chat_presence(self, jid: Any, state: Any, media: Any) -> None:
            self.calls.append(f"send_chat_presence {jid.User} {state.name} {media.name}")

        def download_any(self, message: Any, path: Any = None) -> bytes:
            self.calls.append("download_any")
            return self.script.media

        def PairPhone(self, phone: str, show_push_notification: bool, **kwargs: Any) -> str:
            self.calls.append("PairPhone")
            return f"ABCD-{phone[-4:]}"

    return FakeGoClient


@pytest.fixture
def fake_neonize(database_url: str) -> Iterator[FakeNeonize]:
    """Neonize links in this process on this test's database, with Go played in Python."""
    from wamgr.transport.neonize.link import LinkSettings
    from wamgr.transport.neonize.local import LocalNeonizeTransport

    client_class = _fake_client_class()
    script = Script()
    holder: list[FakeNeonize] = []

    def factory(store: str, uuid: str, new_device: bool) -> Any:
        client = client_class(store, uuid, new_device, script)
        fake = holder[0]
        with fake.built:
            fake.clients.append(client)
            fake.built.notify_all()
        return client

    transport = LocalNeonizeTransport(
        store_url(database_url),
        client_factory=factory,
        settings=LinkSettings(recheck_interval_s=0.01, abandon_after_s=2.0),
    )
    fake = FakeNeonize(transport, script)
    holder.append(fake)
    yield fake
    transport.close(5.0)


@pytest.fixture
def connected(make_manager: Any, fake_neonize: FakeNeonize, database_url: str) -> tuple[Any, Any]:
    """A manager whose tenant t1 resumed device JID and is connected, and its fake client."""
    from wamgr import TenantState

    insert_device(database_url, JID)
    store_jid(database_url, "t1", JID)
    mgr = make_manager(transport=fake_neonize.transport)
    mgr.connect("t1")
    client = fake_neonize.client()
    feed(client, neonize_events().ConnectedEv(status=True))
    status = mgr.wait_for("t1", TenantState.CONNECTED, timeout=5)
    assert status.jid == JID
    return mgr, client


# --- the simulator -------------------------------------------------------------------------

#: A phone that messages the tenants in the simulator tests.
PEER = "15559990001@s.whatsapp.net"


class Events:
    """A list-appending ``on_event`` callback."""

    def __init__(self) -> None:
        self.items: list[LinkEvent] = []

    def __call__(self, event: LinkEvent) -> None:
        self.items.append(event)

    def kinds(self) -> list[type[LinkEvent]]:
        return [type(e) for e in self.items]

    def closed(self) -> list[Closed]:
        return [e for e in self.items if isinstance(e, Closed)]


@pytest.fixture
def sim(clock: VirtualClock) -> Iterator[SimWhatsApp]:
    """A simulated WhatsApp that pairs new devices at once; closed at the end."""
    made = SimWhatsApp(auto_pair=True, clock=clock)
    yield made
    made.close()


def open_link(
    sim: SimWhatsApp, tenant: str, jid: str | None = None, generation: int = 1
) -> tuple[SimLink, Events]:
    """Build and open a link of ``tenant`` (resuming ``jid``, or pairing); its events too."""
    events = Events()
    link = sim.create_link(tenant, jid, generation, events)
    link.open()
    return link, events


def paired_link(sim: SimWhatsApp, tenant: str = "t1") -> tuple[SimLink, Events, str]:
    """Pair a new device for ``tenant`` (``sim`` must auto-pair); the link, events and JID."""
    link, events = open_link(sim, tenant)
    paired = events.items[1]
    assert isinstance(paired, Paired)
    return link, events, paired.jid
