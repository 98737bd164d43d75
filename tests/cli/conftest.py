"""Fixtures of the CLI tests: run ``wamgr`` in-process, and undo what it does to logging.

Also the few helpers every CLI test file reads results with (:func:`ok`, :func:`explain`,
:func:`stored_statuses`).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from loguru import logger

from wamgr.cli import main

Wamgr = Callable[..., Result]

#: Every field of a TenantStatus, plus ``desired``: the keys of one tenant in JSON output.
STATUS_KEYS = {
    "tenant_id",
    "state",
    "jid",
    "owner",
    "attempt",
    "next_retry_at",
    "last_error",
    "updated_at",
    "desired",
    "lease_expires_at",
}
#: The keys of one tenant in ``wamgr status --json``: its status and its settings (masked).
STATUS_JSON_KEYS = STATUS_KEYS | {"settings"}


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


def ok(result: Result) -> str:
    """The stdout of a run that must have succeeded."""
    assert result.exit_code == 0, explain(result)
    assert result.exception is None, explain(result)
    return result.stdout


def explain(result: Result) -> str:
    """A run's exit code, exception and output, for an assertion message."""
    return (
        f"exit {result.exit_code}, exception {result.exception!r}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )


def stored_statuses(wamgr: Wamgr) -> dict[str, dict[str, Any]]:
    """``wamgr status --json``, by tenant id."""
    listed = json.loads(ok(wamgr("status", "--json")))
    assert isinstance(listed, list)
    return {entry["tenant_id"]: entry for entry in listed}
