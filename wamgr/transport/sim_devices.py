"""The simulator's accounts and their linked devices, kept in a file so a restart resumes them.

Real WhatsApp remembers a linked device when the client restarts; the in-process simulator
that ``transport="sim"`` names does the same by keeping its :class:`DeviceBook` in the
manager's home folder (:data:`DEVICES_FILE`). A simulator built without a file keeps its
devices in memory only, as tests want.

The file is small JSON, rewritten whole on each change through a temporary file and
``os.replace``, so a crash leaves the old version or the new one, never half of either. A
file that cannot be read is a one-line warning and an empty book, not a failed start. Only
one process should use a file at a time (each in-process simulator is its own WhatsApp).

New accounts get JIDs ``1555NNNNNNN@s.whatsapp.net`` numbered after the highest one in the
book, so no JID is ever handed to two pairings, across restarts too.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Any

from loguru import logger

#: The file, in the manager's home folder, that ``transport="sim"`` keeps its devices in.
DEVICES_FILE = "sim-devices.json"

#: Version of the file's layout, written as ``"format"``.
FILE_FORMAT = 1

_JID = re.compile(r"1555(\d{7})@s\.whatsapp\.net")


class SimAccount:
    """A WhatsApp account with its one linked device, and what its links did."""

    __slots__ = ("activity", "device_linked", "jid", "logouts", "sent")

    def __init__(self, jid: str, device_linked: bool = True) -> None:
        self.jid = jid
        self.device_linked = device_linked
        self.logouts = 0
        self.sent: list[tuple[str, str, str]] = []
        #: What its links showed in chats, in order: ``("presence", to, state)`` and
        #: ``("message", to, message_id)``.
        self.activity: list[tuple[str, str, str]] = []


class DeviceBook:
    """Every account the simulator ever paired, in pairing order, and which are linked.

    Guarded by ``lock`` (the simulator's), held by the caller of every method but
    :meth:`save`, which writes the file outside it. With ``path`` None nothing is written.
    """

    def __init__(self, lock: threading.Lock, path: Path | None = None) -> None:
        self._lock = lock
        self._path = path
        self._accounts = _load(path) if path is not None else {}
        numbers = (_number(jid) for jid in self._accounts)
        self._last_number = max((n for n in numbers if n is not None), default=0)
        self._changes = 0  # bumped by every change that the file should show
        self._saved = 0  # the value of _changes that the file shows
        self._save_lock = threading.Lock()  # one writer at a time, newest state wins
        self._save_failing = False

    @property
    def path(self) -> Path | None:
        """The file the devices are kept in, or None (memory only)."""
        return self._path

    def get(self, jid: str) -> SimAccount | None:
        """The account of ``jid``, or None if it was never paired."""
        return self._accounts.get(jid)

    def jids(self) -> list[str]:
        """JIDs of every account, in pairing order."""
        return list(self._accounts)

    def __len__(self) -> int:
        return len(self._accounts)

    def pair_new(self) -> SimAccount:
        """Create an account with a JID no account ever had, its device linked."""
        while True:
            self._last_number += 1
            jid = f"1555{self._last_number:07d}@s.whatsapp.net"
            if jid not in self._accounts:
                break
        account = self._accounts[jid] = SimAccount(jid)
        self._changes += 1
        return account

    def unlink(self, account: SimAccount) -> None:
        """Unlink the account's device: later resumes of its JID are refused."""
        if account.device_linked:
            account.device_linked = False
            self._changes += 1

    def save(self) -> None:
        """Write the book to its file if it changed since the last write (call without the lock).

        Concurrent callers queue on one writer lock and the first one through writes the
        newest state, so the file never goes back to an older one. A failed write is logged
        once (until a write succeeds again) and retried with the next change.
        """
        if self._path is None:
            return
        with self._save_lock:
            with self._lock:
                if self._changes == self._saved:
                    return
                changes = self._changes
                text = _dump(self._accounts)
            try:
                write_atomically(self._path, text)
            except OSError as exc:
                if not self._save_failing:
                    logger.warning(
                        "could not keep the simulator's devices in {} ({}); they live in "
                        "memory until a write succeeds",
                        self._path,
                        exc,
                    )
                self._save_failing = True
                return
            self._save_failing = False
            self._saved = changes


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` by a file holding ``text``: readers see the old file or the new one.

    The text goes to a temporary file in the same folder (created if missing), is flushed
    to disk, and then takes the place of ``path`` with ``os.replace``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _dump(accounts: dict[str, SimAccount]) -> str:
    devices = [{"jid": a.jid, "linked": a.device_linked} for a in accounts.values()]
    return json.dumps({"format": FILE_FORMAT, "devices": devices}, indent=1) + "\n"


def _load(path: Path) -> dict[str, SimAccount]:
    """The accounts kept in ``path``; none if it is missing, or (with a warning) unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        return _unreadable(path, str(exc))
    try:
        return _parse(json.loads(text))
    except (ValueError, TypeError, KeyError) as exc:  # JSONDecodeError is a ValueError
        return _unreadable(path, str(exc) or type(exc).__name__)


def _parse(data: Any) -> dict[str, SimAccount]:
    if not isinstance(data, dict) or data.get("format") != FILE_FORMAT:
        raise ValueError(f"not a format-{FILE_FORMAT} devices file")
    accounts: dict[str, SimAccount] = {}
    for entry in data["devices"]:
        jid, linked = entry["jid"], entry["linked"]
        if not isinstance(jid, str) or not jid or not isinstance(linked, bool):
            raise ValueError(f"bad device entry {entry!r}")
        accounts[jid] = SimAccount(jid, linked)
    return accounts


def _unreadable(path: Path, why: str) -> dict[str, SimAccount]:
    logger.warning(
        "ignoring the simulator's devices file {} ({}); the simulator starts with no devices",
        path,
        why.splitlines()[0] if why else "unreadable",
    )
    return {}


def _number(jid: str) -> int | None:
    match = _JID.fullmatch(jid)
    return int(match.group(1)) if match else None
