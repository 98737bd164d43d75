"""Fixtures of the CLI tests: run ``wamgr`` in-process, and undo what it does to logging."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from loguru import logger

from wamgr.cli import main

Wamgr = Callable[..., Result]


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Undo what every ``wamgr`` invocation does to loguru and to the root logger.

    The group callback sends loguru to the CliRunner's stderr and replaces the root logger's
    handlers; left so, later tests would log into a stream nobody reads.
    """
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    logger.remove()
    logger.add(sys.stderr)
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(autouse=True)
def _no_wamgr_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a developer's WAMGR_* settings (a config file, a database) out of these tests."""
    for name in list(os.environ):
        if name.startswith("WAMGR_") and not name.startswith("WAMGR_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture
def wamgr(database_url: str, tmp_path: Path) -> Wamgr:
    """Run ``wamgr --database-url <this test's database> ARGS...`` in-process."""
    runner = CliRunner()

    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        return runner.invoke(
            main,
            ["--database-url", database_url, "--home", str(tmp_path / "home"), *args],
            prog_name="wamgr",
            env=env,
        )

    return run
