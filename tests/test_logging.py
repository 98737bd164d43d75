"""The log rules: no variable values in tracebacks, no secrets, one traceback per failure,
control characters escaped."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import httpx
import pytest
from loguru import logger

from wamgr import logging as wamgr_logging
from wamgr.api.app import create_app
from wamgr.api.server import HttpServer

SECRET_TEXT = "meet me at the usual place, the code is 4711"


@pytest.fixture
def log() -> Iterator[io.StringIO]:
    """Logs as ``wamgr`` configures them, into a buffer; loguru and the root logger are put
    back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    buffer = io.StringIO()
    wamgr_logging.configure(level="DEBUG", sink=buffer)
    yield buffer
    logger.remove()
    logger.configure(patcher=lambda record: None)
    logger.add(sys.stderr)
    root.handlers[:] = handlers
    root.setLevel(level)


def _fail_with_text_in_a_local(text: str) -> None:
    recipient = "15550001111"  # noqa: F841 (a local a diagnosing traceback would show)
    raise RuntimeError("the link refused the message")


def test_a_traceback_shows_no_variable_values(log: io.StringIO) -> None:
    try:
        _fail_with_text_in_a_local(SECRET_TEXT)
    except RuntimeError:
        logger.exception("sending failed")

    written = log.getvalue()
    assert "Traceback" in written and "the link refused the message" in written
    assert SECRET_TEXT not in written
    assert "15550001111" not in written


@pytest.mark.parametrize("json_lines", [False, True], ids=["text", "json"])
def test_control_characters_are_escaped_in_messages_and_bound_values(
    log: io.StringIO, json_lines: bool
) -> None:
    if json_lines:
        wamgr_logging.configure(level="DEBUG", json=True, sink=log)

    logger.bind(tenant="shop\n2").warning("GET /api/tenants/{}", "a\x00b\x1b[2Jc\r\nforged")

    written = log.getvalue()
    assert "\x00" not in written and "\x1b" not in written and "\r" not in written
    assert written.count("\n") == 1  # one record, one line
    if json_lines:
        record = json.loads(written)["record"]
        assert record["message"] == "GET /api/tenants/a\\x00b\\x1b[2Jc\\r\\nforged"
        assert record["extra"]["tenant"] == "shop\\n2"
    else:
        assert "GET /api/tenants/a\\x00b\\x1b[2Jc\\r\\nforged" in written
        assert "shop\\n2" in written


@pytest.mark.parametrize(
    ("logged", "kept"),
    [
        ("postgresql://wamgr:hunter2@db:5432/wamgr", "postgresql://wamgr:***@db:5432/wamgr"),
        ("proxy http://bob:s3cr%40t@proxy.example:3128 down", "http://bob:***@proxy.example"),
        ("host=db password=hunter2 dbname=wamgr", "host=db password=*** dbname=wamgr"),
        ("host=db password='hun ter2' dbname=wamgr", "host=db password=*** dbname=wamgr"),
    ],
)
def test_passwords_in_urls_and_conninfos_are_not_written(
    log: io.StringIO, logged: str, kept: str
) -> None:
    logger.warning("database unreachable: {}", logged)

    written = log.getvalue()
    assert kept in written
    assert "hunter2" not in written and "s3cr" not in written and "hun ter2" not in written


@pytest.mark.slow
def test_a_failed_request_is_logged_once_without_the_message_text(
    log: io.StringIO, mgr, monkeypatch: pytest.MonkeyPatch
) -> None:
    mgr.connect("t1")

    def send_text(tenant_id: str, to: str, text: str, timeout: float | None = None) -> str:
        _fail_with_text_in_a_local(text)
        return "never"

    monkeypatch.setattr(mgr, "send_text", send_text)
    server = HttpServer(create_app(mgr), "127.0.0.1", 0).start()
    try:
        response = httpx.post(
            f"{server.url}/api/tenants/t1/messages",
            json={"to": "15550001111", "text": SECRET_TEXT, "queue": False},
            timeout=10,
        )
    finally:
        server.stop(timeout=5)

    assert response.status_code == 500
    written = log.getvalue()
    assert written.count("Traceback") == 1, written
    assert "HTTP POST /api/tenants/t1/messages failed" in written
    assert SECRET_TEXT not in written


def test_a_logged_message_event_does_not_show_its_text() -> None:
    from wamgr.events import InboundMessage
    from wamgr.transport.base import MessageReceived

    inbound = InboundMessage("t1", "m1", "15550001111", SECRET_TEXT)
    received = MessageReceived(generation=1, message_id="m1", sender="x", text=SECRET_TEXT)

    for event in (inbound, received):
        assert SECRET_TEXT not in repr(event)
        assert event.text == SECRET_TEXT


def test_commands_and_wire_lines_never_carry_message_text_into_logs():
    from wamgr.actors.messages import SendText

    assert "secret words" not in repr(SendText("15550001111", "secret words"))


class Records(logging.Handler):
    """Keeps the standard-library records it is handed."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def stdlib_records() -> Iterator[list[logging.LogRecord]]:
    """wamgr's records routed into a ``logging`` handler on the ``wamgr`` logger."""
    handler = Records()
    wamgr_logger = logging.getLogger("wamgr")
    wamgr_logger.addHandler(handler)
    level = wamgr_logger.level
    wamgr_logger.setLevel(logging.DEBUG)
    sink = wamgr_logging.to_stdlib(level="DEBUG")
    yield handler.records
    logger.remove(sink)
    wamgr_logger.removeHandler(handler)
    wamgr_logger.setLevel(level)
    logger.add(sys.stderr)  # to_stdlib took loguru's default sink away


def test_to_stdlib_hands_records_to_logging_with_the_tenant_and_scrubbed(
    stdlib_records: list[logging.LogRecord], mgr
) -> None:
    logger.bind(tenant="not wamgr's").info("an application's own line")  # not wamgr's: stays
    mgr.connect("t1")
    mgr.wait_for("t1", "connected", timeout=5)
    mgr.remove("t1")  # the actor has logged "connected as" before it took the remove
    logger.patch(lambda r: r.update(name="wamgr.test")).bind(tenant="a\nb").warning(
        "db postgresql://u:hunter2@h/db"
    )

    mine = [r for r in stdlib_records if r.name == "wamgr.actors.tenant"]
    assert mine and {r.tenant for r in mine} == {"t1"}  # type: ignore[attr-defined]
    assert any(r.levelno == logging.INFO and "connected as" in r.getMessage() for r in mine)
    assert all(r.name.startswith("wamgr") for r in stdlib_records)
    forged = [r for r in stdlib_records if r.name == "wamgr.test"]
    assert forged[0].getMessage() == "db postgresql://u:***@h/db"
    assert forged[0].tenant == "a\\nb"  # type: ignore[attr-defined]
