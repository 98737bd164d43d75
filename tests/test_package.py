"""The package's public names load lazily: importing wamgr does not load the manager."""

from __future__ import annotations

import subprocess
import sys

import pytest

import wamgr


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return set(out.stdout.split())


def test_importing_wamgr_loads_neither_the_manager_nor_the_actors():
    loaded = _modules_after("import wamgr")
    assert "wamgr.manager" not in loaded
    assert not any(name.startswith("wamgr.actors") for name in loaded)


@pytest.mark.slow
def test_a_public_name_loads_its_module_on_first_use():
    loaded = _modules_after("import wamgr; wamgr.ConnectionManager")
    assert "wamgr.manager" in loaded


def test_every_public_name_resolves():
    for name in wamgr.__all__:
        assert getattr(wamgr, name).__name__ == name


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        wamgr.Nope  # noqa: B018
