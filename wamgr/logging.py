"""Log set-up: loguru for everything, with the tenant id on every tenant's line.

Actors bind ``tenant=`` once; this module shows it in the text format and keeps it as a
field in JSON lines (``--log-json``). Standard-library logging (pykka, psycopg, uvicorn,
neonize) is routed into loguru by :class:`InterceptHandler`.

Imported as a library, wamgr logs nothing until the application turns its logs on:
``logger.enable("wamgr")`` for loguru's sinks, or :func:`to_stdlib` for an application that
uses the standard ``logging`` module. :func:`configure` (``wamgr serve``, the CLI) turns
them on.

The rules every sink added here keeps (docs/operations.md, "Logs"):

- A traceback shows code, never the values of variables (loguru's ``diagnose`` is off): a
  message's text or a key in a local variable stays out of the log.
- Control characters in a message or a bound value are written as escapes (``\\x00``,
  ``\\n``), so a value from outside (a URL, a tenant id) can neither forge a line nor
  corrupt a terminal; the password of a URL or conninfo is written as ``***``.
- A failure is logged once, with one traceback, where it is handled: uvicorn's own
  "Exception in ASGI application" repeats what the API's error handler has already logged,
  so it is dropped.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

from loguru import logger

if TYPE_CHECKING:
    from loguru import Message

#: The levels ``--log-level`` accepts, least severe first.
LEVELS = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")

TEXT_FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
    "<cyan>{extra[tenant]}</cyan> {message}"
)

_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
#: C0 controls, DEL and C1 controls -> their escapes.
_CONTROLS = {
    code: _NAMED_ESCAPES.get(chr(code), f"\\x{code:02x}")
    for code in (*range(0x20), *range(0x7F, 0xA0))
}
#: ``scheme://user:PASSWORD@`` in a URL, and ``password=PASSWORD`` in a conninfo.
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*):[^\s@/]*@")
_CONNINFO_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")


def scrub(text: str) -> str:
    """``text`` as a log line may hold it: passwords of URLs and conninfos replaced by
    ``***``, control characters escaped."""
    text = _URL_PASSWORD.sub(r"\g<head>:***@", text)
    text = _CONNINFO_PASSWORD.sub(r"\g<head>***", text)
    return text.translate(_CONTROLS)


def scrub_record(record: Any) -> None:
    """loguru patcher: :func:`scrub` the message and every text value bound to the record."""
    record["message"] = scrub(record["message"])
    extra = record["extra"]
    for key, value in extra.items():
        if isinstance(value, str):
            extra[key] = scrub(value)


class InterceptHandler(logging.Handler):
    """Hands standard-library log records to loguru, keeping level and caller."""

    def emit(self, record: logging.LogRecord) -> None:
        """Forward one record."""
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame: FrameType | None = logging.currentframe()
        depth = 2
        while frame is not None and frame.f_code.co_filename == logging.__file__:
            frame = frame.f_back
            depth += 1
        logger.opt(depth=depth, exception=record.exc_info).log(level, record.getMessage())


class LoggedByTheApi(logging.Filter):
    """Drops uvicorn's "Exception in ASGI application": the API's catch-all error handler
    (``wamgr.api.app``) has logged that failure with its traceback already."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for the repeat, True for everything else."""
        return not record.getMessage().startswith("Exception in ASGI application")


def configure(level: str = "INFO", json: bool = False, sink: TextIO | None = None) -> None:
    """Send logs to ``sink`` (stderr) at ``level``, as text or as one JSON object per line.

    Replaces every loguru sink; tracebacks show no variable values, and each record is
    scrubbed (:func:`scrub`).
    """
    logger.remove()
    logger.enable("wamgr")  # importing wamgr turned them off: a library is quiet unless asked
    logger.configure(extra={"tenant": "-"}, patcher=scrub_record)
    options: dict[str, Any] = {"level": level, "diagnose": False, "backtrace": False}
    if json:
        logger.add(sink or sys.stderr, serialize=True, **options)
    else:
        logger.add(sink or sys.stderr, format=TEXT_FORMAT, colorize=None, **options)
    logging.basicConfig(handlers=[InterceptHandler()], level=logging.WARNING, force=True)
    uvicorn_errors = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, LoggedByTheApi) for f in uvicorn_errors.filters):
        uvicorn_errors.addFilter(LoggedByTheApi())


_routing = threading.local()


def to_stdlib(level: str | int = "INFO") -> int:
    """Send wamgr's log records to the standard ``logging`` module, from ``level`` up.

    Each record goes to the logger named after the wamgr module that wrote it (so under
    ``logging.getLogger("wamgr")``), with the tenant id as the record's ``tenant`` attribute
    (``"-"`` when none); message and tenant are scrubbed as every wamgr sink does. Turns
    wamgr's logs on, and removes loguru's default stderr sink if it is still installed (so
    no record is written twice). Returns the loguru handler id: ``logger.remove(id)``
    undoes it. Not for a process that also routes ``logging`` into loguru
    (:func:`configure` does): a record would go round; it is dropped instead.

        import logging, wamgr.logging
        logging.basicConfig(format="%(levelname)s %(name)s [%(tenant)s] %(message)s")
        wamgr.logging.to_stdlib(level="INFO")
    """
    with contextlib.suppress(ValueError):
        logger.remove(0)  # loguru's default sink: stderr
    handler_id = logger.add(
        _to_stdlib, level=level, filter="wamgr", format="{message}", diagnose=False, catch=True
    )
    logger.enable("wamgr")
    return handler_id


def _to_stdlib(message: Message) -> None:
    """loguru sink: one wamgr record as a ``logging.LogRecord``."""
    if getattr(_routing, "active", False):
        return  # logging routed back into loguru (InterceptHandler): do not go round
    record = message.record
    name = record["name"] or "wamgr"
    target = logging.getLogger(name)
    if not target.isEnabledFor(record["level"].no):
        return
    exception = record["exception"]
    exc_info = None
    if exception is not None and exception.type is not None and exception.value is not None:
        exc_info = (exception.type, exception.value, exception.traceback)
    tenant = record["extra"].get("tenant", "-")
    out = target.makeRecord(
        name,
        record["level"].no,
        record["file"].path,
        record["line"],
        scrub(record["message"]),
        (),
        exc_info,
        func=record["function"],
        extra={"tenant": scrub(tenant) if isinstance(tenant, str) else tenant},
    )
    _routing.active = True
    try:
        target.handle(out)
    finally:
        _routing.active = False
