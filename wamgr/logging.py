"""Log set-up: loguru for everything, with the tenant id on every tenant's line.

Actors bind ``tenant=`` once; this module shows it in the text format and keeps it as a
field in JSON lines (``--log-json``). Standard-library logging (pykka, psycopg, neonize) is
routed into loguru by :class:`InterceptHandler`.
"""

from __future__ import annotations

import logging
import sys

from loguru import logger

TEXT_FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
    "<cyan>{extra[tenant]}</cyan> {message}"
)


class InterceptHandler(logging.Handler):
    """Hands standard-library log records to loguru, keeping level and caller."""

    def emit(self, record: logging.LogRecord) -> None:
        """Forward one record."""
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame, depth = logging.currentframe(), 2
        while frame is not None and frame.f_code.co_filename == logging.__file__:
            frame = frame.f_back
            depth += 1
        logger.opt(depth=depth, exception=record.exc_info).log(level, record.getMessage())


def configure(level: str = "INFO", json: bool = False) -> None:
    """Send logs to stderr at ``level``, as text or as one JSON object per line."""
    logger.remove()
    logger.configure(extra={"tenant": "-"})
    if json:
        logger.add(sys.stderr, level=level, serialize=True)
    else:
        logger.add(sys.stderr, level=level, format=TEXT_FORMAT, colorize=None)
    logging.basicConfig(handlers=[InterceptHandler()], level=logging.WARNING, force=True)
