"""Fixtures of the worker tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from loguru import logger


@pytest.fixture
def logs() -> Iterator[list[str]]:
    """Every loguru record logged during the test, formatted with its traceback if any."""
    lines: list[str] = []
    sink = logger.add(lines.append, format="{level} {message}", level="DEBUG", catch=False)
    yield lines
    logger.remove(sink)
