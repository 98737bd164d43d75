"""Fixtures for the neonize transport: a neonize client whose Go calls are played in Python,
events fed as Go feeds them, and helpers to watch host processes.

``FakeGoClient`` is a real ``neonize.client.NewClient`` (so registration, the event decoder
and the QR / login-status entry points are neonize's own) with the calls into Go replaced:
``connect()`` shows a QR (new device) or delivers the code-0 ``Device`` event (a resumed
one) and then blocks until ``stop()``, as ``Neonize`` does.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from wamgr.transport.neonize.auth import store_url

#: A device JID as whatsmeow stores it (user:device@server).
JID = "15550001111:7@s.whatsapp.net"
OTHER_JID = "15550003333:4@s.whatsapp.net"


@dataclass
class Script:
    """How the fake Go side behaves for the next clients."""

    dial_error: str | None = None
    logged_in: bool = True  # is_logged_in of a resumed device


@dataclass
class FakeNeonize:
    """A LocalNeonizeTransport whose clients are FakeGoClients, and those clients."""

    transport: Any
    script: Script
    clients: list[Any] = field(default_factory=list)
    built: threading.Condition = field(default_factory=threading.Condition)

    def client(self, index: int = -1, count: int | None = None, timeout: float = 5.0) -> Any:
        """The ``index``-th client built, waiting until ``count`` (default index+1) exist."""
        need = count if count is not None else (index + 1 if index >= 0 else 1)
        with self.built:
            assert self.built.wait_for(lambda: len(self.clients) >= need, timeout), (
                f"only {len(self.clients)} neonize clients were built"
            )
            return self.clients[index]


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

        def connect(self, proxy_settings: Any = None) -> None:
            from wamgr.transport.neonize.jids import jid_string

            self.calls.append("connect")
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
            return SendResponse(ID=f"3EB0{len(self.sent):04d}")

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
