"""The package as an application sees it: public names that load lazily, a library that
logs nothing unless asked, the README's examples running as written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import wamgr


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return set(out.stdout.split())


@pytest.mark.slow
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


README = Path(__file__).resolve().parent.parent / "README.md"


def readme_snippets(database_url: str) -> list[str]:
    """The README's Python examples (blocking and asyncio), on the test's database."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert len(blocks) == 2, "the README shows the blocking and the asyncio example"
    home = 'home="/tmp/wamgr"'
    assert all(home in block for block in blocks)
    # and a generous wait: the machine running the suite may be busy
    on_test_db = [block.replace(home, f"database_url={database_url!r}") for block in blocks]
    return [block.replace("timeout=10", "timeout=60") for block in on_test_db]


#: Prepended to a snippet: wamgr's records into a ``logging`` handler, printed at the end.
TO_STDLIB = """
import atexit, json, logging, wamgr.logging
class Keep(logging.Handler):
    records = []
    def emit(self, record):
        self.records.append([record.name, record.levelname, record.tenant])
logging.getLogger("wamgr").addHandler(Keep())
logging.getLogger("wamgr").setLevel(logging.DEBUG)
wamgr.logging.to_stdlib(level="DEBUG")
atexit.register(lambda: print("RECORDS " + json.dumps(Keep.records)))
"""


@pytest.mark.slow
@pytest.mark.parametrize("example", [0, 1], ids=["blocking", "asyncio"])
def test_the_readme_example_writes_nothing_to_stderr(database_url, example) -> None:
    snippet = readme_snippets(database_url)[example]

    run = subprocess.run(
        [sys.executable, "-c", snippet], capture_output=True, text=True, timeout=120
    )

    assert run.returncode == 0, run.stderr
    assert run.stderr == ""


@pytest.mark.slow
@pytest.mark.parametrize("example", [0, 1], ids=["blocking", "asyncio"])
def test_with_stdlib_routing_the_records_reach_logging_with_the_tenant(database_url, example):
    snippet = TO_STDLIB + readme_snippets(database_url)[example]

    run = subprocess.run(
        [sys.executable, "-c", snippet], capture_output=True, text=True, timeout=120
    )

    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    records = json.loads(run.stdout.split("RECORDS ", 1)[1])
    assert ["wamgr.actors.tenant", "INFO", "t1"] in records
    assert all(name.startswith("wamgr") for name, _, _ in records)


def test_one_version_everywhere() -> None:
    from importlib.metadata import version

    from click.testing import CliRunner

    from wamgr.cli import main

    shown = CliRunner().invoke(main, ["--version"])
    assert shown.exit_code == 0
    assert shown.output == f"wamgr {wamgr.__version__}\n"
    assert version("wamgr") == wamgr.__version__
