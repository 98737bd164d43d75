"""The quick loop (``bin/test --fast``: every test not marked slow) keeps at least one test of
every test module, so that a change anywhere is checked in seconds, not only by the full run.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Modules whose every test is slow, and why none of them can be quick.
ALL_SLOW = {
    "tests/test_chaos.py": "kills, pauses and partitions `wamgr serve` processes",
    "tests/test_outbound_failover.py": "kills a `wamgr serve` process with messages queued",
    "tests/test_package_wheel.py": "builds the wheel and installs it in a new environment",
    "tests/api/test_fuzz.py": "fuzzes every route from the OpenAPI document",
    "tests/api/test_serve.py": "runs `wamgr serve` as a process",
    "tests/examples/test_django_app.py": "runs the example under Django's runserver",
    "tests/examples/test_fastapi_app.py": "runs the example under uvicorn",
    "tests/transport/test_neonize_stress.py": "100 real neonize clients (Go) from 8 threads",
    "tests/web/test_browser.py": "drives a real Chromium",
}


def test_every_test_module_keeps_a_test_in_the_quick_loop(quick_loop_modules) -> None:
    assert "tests/test_quick_loop.py" in quick_loop_modules  # the run's modules were noted
    without = sorted(path for path, has_fast in quick_loop_modules.items() if not has_fast)
    assert [path for path in without if path not in ALL_SLOW] == [], (
        "these modules have no test left in the quick loop: keep their cheapest one fast"
    )
    for path in ALL_SLOW:
        assert (ROOT / path).exists(), f"{path} is gone: drop it from ALL_SLOW"
        if path in quick_loop_modules:
            assert path in without, f"{path} has a quick test now: drop it from ALL_SLOW"
