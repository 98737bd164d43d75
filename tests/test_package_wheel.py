"""The wheel and sdist built from the project; the wheel, installed into a fresh virtual
environment outside the checkout, serves the HTTP API on its embedded database."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest

import wamgr

ROOT = Path(__file__).resolve().parent.parent
#: Seconds for building, installing, and serving (the first start makes a database).
BUILD_S, INSTALL_S, SERVE_S = 300.0, 600.0, 120.0


def build(outdir: Path) -> tuple[Path, Path]:
    """``python -m build``: the wheel and the sdist, in ``outdir``."""
    run = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(outdir), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=BUILD_S,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    (wheel,) = outdir.glob("wamgr-*.whl")
    (sdist,) = outdir.glob("wamgr-*.tar.gz")
    return wheel, sdist


def install(wheel: Path, venv: Path) -> Path:
    """A fresh virtual environment with ``wheel`` and its dependencies; its ``bin``.

    uv (from the project's .venv, with its cache) when there is one, else venv and pip.
    """
    uv = shutil.which("uv", path=str(Path(sys.executable).parent))
    if uv:
        steps = [[uv, "venv", "--quiet", "--python", sys.executable, str(venv)]]
        steps += [
            [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), str(wheel)]
        ]
    else:
        steps = [[sys.executable, "-m", "venv", str(venv)]]
        steps += [[str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)]]
    for step in steps:
        run = subprocess.run(
            step, capture_output=True, text=True, timeout=INSTALL_S, cwd=venv.parent
        )
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return venv / "bin"


@pytest.mark.slow
@pytest.mark.timeout(BUILD_S + INSTALL_S + 2 * SERVE_S)
def test_the_wheel_installed_elsewhere_serves_the_api(tmp_path: Path) -> None:
    wheel, sdist = build(tmp_path / "dist")
    names = zipfile.ZipFile(wheel).namelist()
    assert "wamgr/py.typed" in names
    assert any(re.fullmatch(r"wamgr/store/migrations/0001_.*\.sql", n) for n in names)
    assert f"wamgr-{wamgr.__version__}" in wheel.name and f"wamgr-{wamgr.__version__}" in sdist.name

    bin_dir = install(wheel, tmp_path / "venv")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WAMGR_", "PYTHON"))}
    env.update(WAMGR_HOME=str(tmp_path / "home"), PYTHONUNBUFFERED="1")
    where = subprocess.run(
        [str(bin_dir / "python"), "-c", "import wamgr; print(wamgr.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=True,
    )
    assert not Path(where.stdout.strip()).is_relative_to(ROOT)
    version = subprocess.run(
        [str(bin_dir / "wamgr"), "--version"], capture_output=True, text=True, env=env, timeout=60
    )
    assert version.stdout.strip() == f"wamgr {wamgr.__version__}"

    log_path = tmp_path / "serve.log"
    argv = [str(bin_dir / "wamgr"), "serve", "--transport", "sim", "--port", "0"]
    with log_path.open("w") as log:
        proc = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + SERVE_S
        while not (found := re.search(r"HTTP API on (http://\S+);", log_path.read_text())):
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        status = httpx.get(f"{found.group(1)}/api/status", timeout=10)
        assert status.status_code == 200, status.text
        assert status.json()["database"] == "ok"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=SERVE_S) == 0, log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
