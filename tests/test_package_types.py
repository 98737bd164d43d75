"""The public API passes a strict type check, as an application's type checker sees it
(``[tool.mypy]`` in pyproject.toml names the modules)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_public_api_passes_mypy_strict() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Success" in run.stdout


def test_the_package_says_it_is_typed() -> None:
    assert (ROOT / "wamgr" / "py.typed").is_file()
