"""``bin/wamgr``'s first start (bin/_venv.sh): one line per step, installers' noise kept in a
log, uv when it can be had and pip when not, and nothing left running after a SIGTERM.

A stand-in ``python3`` (``$PYTHON``) plays venv, pip and uv, so no test downloads anything.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Seconds a set-up with stand-in installers may take, and a stopped one may take to exit.
DEADLINE_S = 30.0
POLL_S = 0.05

#: Plays ``python3 -m venv``, the venv's python (``-m pip install``) and, copied, ``uv``.
#: Each prints noise, as setuptools and pip do, that the user must not see.
_FAKE_PYTHON = r"""#!/usr/bin/env bash
set -eu
echo "WARNING: setuptools banner noise ($*)"
me="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
if [ -n "${FAKE_HANG:-}" ]; then
    echo $$ > "$FAKE_HANG"
    sleep 60 &
    echo $! >> "$FAKE_HANG"
    wait
fi
case "$*" in
    "-m venv --clear "*)
        dir="${@: -1}"
        mkdir -p "$dir/bin"
        cp "$me" "$dir/bin/python";;
    "-m pip install --quiet uv")
        [ -n "${FAKE_NO_UV:-}" ] && { echo "ERROR: no uv here"; exit 1; }
        cp "$me" "$(dirname "$me")/uv";;
    "pip install --quiet --python "*|"-m pip install --quiet -e "*)
        printf '#!/bin/sh\necho "wamgr ran: $*"\n' > "$(dirname "$me")/wamgr"
        chmod +x "$(dirname "$me")/wamgr";;
    *) echo "unexpected: $*"; exit 3;;
esac
"""


@pytest.fixture
def fake_python(tmp_path: Path) -> Path:
    path = tmp_path / "fake-python3"
    path.write_text(_FAKE_PYTHON)
    path.chmod(0o755)
    return path


def _env(tmp_path: Path, fake_python: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WAMGR_", "FAKE_"))}
    env.update(WAMGR_VENV=str(tmp_path / "venv"), PYTHON=str(fake_python), **extra)
    return env


def _bin_wamgr(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "bin" / "wamgr"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
    )


def _steps(stderr: str, venv: Path) -> list[str]:
    return [
        re.sub(r"\(\d+ s\)", "(N s)", line).replace(str(venv), "VENV").replace(str(ROOT), "ROOT")
        for line in stderr.splitlines()
    ]


def test_first_start_shows_one_line_per_step_and_none_of_the_installers_noise(
    tmp_path: Path, fake_python: Path
) -> None:
    env = _env(tmp_path, fake_python)

    first = _bin_wamgr(env, "status")

    assert first.returncode == 0, first.stderr
    assert first.stdout == "wamgr ran: status\n"
    assert _steps(first.stderr, tmp_path / "venv") == [
        "wamgr: creating VENV (first use)",
        "wamgr: installing the installer uv into VENV",
        "wamgr: installing ROOT and its dependencies with uv",
        "wamgr: VENV ready (N s)",
    ]
    assert "banner noise" in (tmp_path / "venv" / "install.log").read_text()
    again = _bin_wamgr(env, "status")
    assert (again.returncode, again.stderr) == (0, "")


def test_without_uv_it_installs_with_pip(tmp_path: Path, fake_python: Path) -> None:
    result = _bin_wamgr(_env(tmp_path, fake_python, FAKE_NO_UV="1"), "status")

    assert result.returncode == 0, result.stderr
    assert _steps(result.stderr, tmp_path / "venv") == [
        "wamgr: creating VENV (first use)",
        "wamgr: installing the installer uv into VENV",
        "wamgr: uv is not available (see VENV/install.log); installing with pip instead",
        "wamgr: installing ROOT and its dependencies with pip",
        "wamgr: VENV ready (N s)",
    ]


def test_a_failed_step_shows_its_output(tmp_path: Path, fake_python: Path) -> None:
    broken = tmp_path / "broken-python3"
    broken.write_text("#!/bin/sh\necho 'Error: no venv module in this python'\nexit 1\n")
    broken.chmod(0o755)

    result = _bin_wamgr(_env(tmp_path, broken), "status")

    assert result.returncode == 1
    assert "wamgr: creating" in result.stderr and "failed; its output" in result.stderr
    assert "Error: no venv module in this python" in result.stderr


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_sigterm_during_the_first_install_stops_the_installer_too(
    tmp_path: Path, fake_python: Path
) -> None:
    pids_file = tmp_path / "installer.pids"
    env = _env(tmp_path, fake_python, FAKE_HANG=str(pids_file))
    wamgr = subprocess.Popen(
        [str(ROOT / "bin" / "wamgr"), "status"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    pids: list[int] = []
    try:
        end = time.monotonic() + DEADLINE_S
        while len(pids) < 2 and time.monotonic() < end:  # the installer and its child
            time.sleep(POLL_S)
            pids = [int(p) for p in pids_file.read_text().split()] if pids_file.exists() else []
        assert len(pids) == 2, "the stand-in installer did not start"

        wamgr.send_signal(signal.SIGTERM)
        _, stderr = wamgr.communicate(timeout=DEADLINE_S)

        assert wamgr.returncode == -signal.SIGTERM
        assert "set-up interrupted by SIGTERM" in stderr
        assert [pid for pid in pids if _running(pid)] == []
    finally:
        wamgr.kill()
        for pid in pids:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)
