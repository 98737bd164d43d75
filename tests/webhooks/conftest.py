"""Fixtures of the webhook tests: a receiver the test controls, the outbox of the test's
database, and managers that send webhooks to the receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from wamgr.store.db import Database
from wamgr.store.outbox import Outbox

#: A valid Standard Webhooks secret (base64 of 32 bytes).
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def webhook_secret() -> str:
    """A valid Standard Webhooks secret."""
    return WEBHOOK_SECRET


@dataclass
class Delivery:
    """One request the receiver got."""

    headers: dict[str, str]
    body: str
    path: str = "/hooks"  # the URL path it was posted to

    @property
    def event(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A webhook endpoint on loopback. ``answer(delivery, nth_attempt_of_its_id)`` says the
    status (and headers) to reply with; by default 200."""

    url: str = ""
    deliveries: list[Delivery] = field(default_factory=list)
    answer: Callable[[Delivery, int], tuple[int, dict[str, str]]] = lambda _d, _n: (200, {})
    changed: threading.Condition = field(default_factory=threading.Condition)

    def wait(self, what: Callable[[list[Delivery]], bool], timeout: float = 10.0) -> list[Delivery]:
        """Wait until ``what(deliveries)`` holds; fail after ``timeout`` seconds."""
        with self.changed:
            if not self.changed.wait_for(lambda: what(list(self.deliveries)), timeout):
                pytest.fail(f"receiver: condition not met within {timeout} s: {self.deliveries}")
            return list(self.deliveries)

    def accepted(self) -> list[Delivery]:
        """Deliveries answered with 2xx (the receiver's view of what was handled)."""
        with self.changed:
            return [d for d in self.deliveries if d.headers.get("x-answered", "").startswith("2")]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on 127.0.0.1 (a free port), stopped at the end."""
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            delivery = Delivery(
                {k.lower(): v for k, v in self.headers.items()},
                self.rfile.read(length).decode(),
                self.path,
            )
            with state.changed:
                seen = sum(
                    1
                    for d in state.deliveries
                    if d.headers["webhook-id"] == delivery.headers["webhook-id"]
                )
                status, headers = state.answer(delivery, seen + 1)
                delivery.headers["x-answered"] = str(status)
                state.deliveries.append(delivery)
                state.changed.notify_all()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="test-receiver", daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    yield state
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def outbox(database_url: str) -> Iterator[Outbox]:
    """The outbox of this test's database, read from the test's own pool."""
    db = Database(database_url, min_size=1, max_size=2)
    db.open()
    yield Outbox(db)
    db.close()


@pytest.fixture
def hooked(make_manager, receiver: Receiver, webhook_secret: str):
    """``hooked(**overrides)``: a manager that sends webhooks to the receiver, with short
    retry delays."""

    def make(**overrides):
        settings = {
            "webhook_urls": (receiver.url,),
            "webhook_secret": webhook_secret,
            "webhook_retry_base_s": 0.05,
            "webhook_retry_max_s": 0.2,
            "webhook_timeout_s": 5.0,
        }
        settings.update(overrides)
        return make_manager(**settings)

    return make
