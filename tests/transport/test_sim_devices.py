"""The simulator's devices, kept in a file so a restarted simulator resumes them.

Issue #13, defect 10: ``serve --transport sim`` started again brought every tenant back
``logged_out`` (the simulator had forgotten its devices) and handed a new pairing a JID
another tenant still held. The simulator that ``transport="sim"`` names now keeps its
devices in the home folder, and numbers new ones after the highest it ever gave.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from wamgr import Config
from wamgr.clock import VirtualClock
from wamgr.transport import resolve_transport
from wamgr.transport.base import Closed, CloseReason, Connected
from wamgr.transport.sim import SimWhatsApp
from wamgr.transport.sim_devices import DEVICES_FILE, DeviceBook, write_atomically

from .conftest import open_link, paired_link


def jid(n: int) -> str:
    return f"1555{n:07d}@s.whatsapp.net"


def write_devices(path: Path, *devices: tuple[str, bool]) -> None:
    entries = [{"jid": j, "linked": linked} for j, linked in devices]
    path.write_text(json.dumps({"format": 1, "devices": entries}), encoding="utf-8")


def warnings(logs: list[str]) -> list[str]:
    return [line for line in logs if line.startswith("WARNING")]


@pytest.fixture
def devices_file(tmp_path: Path) -> Path:
    return tmp_path / "home" / DEVICES_FILE


# --- the book ------------------------------------------------------------------------------


def test_a_simulator_built_without_a_file_keeps_devices_in_memory_only() -> None:
    sim = SimWhatsApp(auto_pair=True)
    jids = [paired_link(sim, f"t{i}")[2] for i in range(3)]

    assert jids == [jid(1), jid(2), jid(3)]
    assert sim.devices_file is None


def test_a_saved_book_is_read_back_in_order_with_its_unlinked_devices(devices_file: Path) -> None:
    lock = threading.Lock()
    book = DeviceBook(lock, devices_file)
    with lock:
        first, second = book.pair_new(), book.pair_new()
        book.unlink(second)
    book.save()

    again = DeviceBook(threading.Lock(), devices_file)

    assert again.jids() == [first.jid, second.jid]
    assert again.get(first.jid).device_linked is True  # type: ignore[union-attr]
    assert again.get(second.jid).device_linked is False  # type: ignore[union-attr]


def test_new_jids_continue_after_the_highest_one_kept(devices_file: Path) -> None:
    devices_file.parent.mkdir()
    write_devices(devices_file, (jid(1), True), (jid(7), False), ("other@s.whatsapp.net", True))

    book = DeviceBook(threading.Lock(), devices_file)

    assert book.pair_new().jid == jid(8)
    assert book.pair_new().jid == jid(9)


def test_the_file_is_written_only_when_something_changed(
    devices_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[Path] = []
    monkeypatch.setattr(
        "wamgr.transport.sim_devices.write_atomically", lambda path, text: writes.append(path)
    )
    book = DeviceBook(threading.Lock(), devices_file)
    book.save()
    account = book.pair_new()
    book.save()
    book.save()
    book.unlink(account)
    book.unlink(account)  # already unlinked: no change
    book.save()
    book.save()

    assert writes == [devices_file, devices_file]


# --- atomic writes and unreadable files ----------------------------------------------------


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_failed_write_leaves_the_old_file_whole_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    path = tmp_path / DEVICES_FILE
    path.write_text("old\n", encoding="utf-8")

    def fail(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, fail)
    with pytest.raises(OSError, match="No space"):
        write_atomically(path, "new\n")

    assert path.read_text(encoding="utf-8") == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == [DEVICES_FILE]


def test_a_write_replaces_the_file_and_creates_its_folder(tmp_path: Path) -> None:
    path = tmp_path / "new" / "home" / DEVICES_FILE
    write_atomically(path, "one\n")
    write_atomically(path, "two\n")
    assert path.read_text(encoding="utf-8") == "two\n"
    assert [p.name for p in path.parent.iterdir()] == [DEVICES_FILE]


@pytest.mark.parametrize(
    "content",
    [
        b'{"format": 1, "devices": [',
        b"\xff\xfe\x00not utf-8",
        b'{"format": 2, "devices": []}',
        b"[]",
        b'{"format": 1, "devices": "all"}',
        b'{"format": 1, "devices": [{"jid": 5, "linked": true}]}',
        b'{"format": 1, "devices": [{"jid": "x@s.whatsapp.net", "linked": "yes"}]}',
        b'{"format": 1, "devices": [{"linked": true}]}',
    ],
    ids=["truncated", "not-utf8", "format", "list", "devices", "jid", "linked", "no-jid"],
)
def test_an_unreadable_file_is_one_warning_and_an_empty_simulator(
    devices_file: Path, logs: list[str], content: bytes
) -> None:
    devices_file.parent.mkdir()
    devices_file.write_bytes(content)

    sim = SimWhatsApp(auto_pair=True, devices_file=devices_file)

    (warning,) = warnings(logs)
    assert str(devices_file) in warning and "starts with no devices" in warning
    assert "\n" not in warning.rstrip("\n")
    assert sim.accounts() == []
    _, _, first = paired_link(sim)  # and it works: the file is written anew
    assert first == jid(1)
    assert DeviceBook(threading.Lock(), devices_file).jids() == [first]


def test_a_path_that_cannot_be_read_is_a_warning_too(tmp_path: Path, logs: list[str]) -> None:
    sim = SimWhatsApp(devices_file=tmp_path)  # a folder, not a file

    assert len(warnings(logs)) == 1
    assert sim.accounts() == []


def test_a_file_that_cannot_be_written_is_warned_about_once_and_memory_goes_on(
    devices_file: Path, logs: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(path: Path, text: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("wamgr.transport.sim_devices.write_atomically", disk_full)
    sim = SimWhatsApp(auto_pair=True, devices_file=devices_file)

    _, _, first = paired_link(sim, "a")
    _, _, second = paired_link(sim, "b")

    (warning,) = warnings(logs)
    assert "could not keep the simulator's devices" in warning and "No space" in warning
    assert sim.accounts() == [first, second]
    assert open_link(sim, "a", first, generation=2)[1].items[0] == Connected(2, first)

    monkeypatch.undo()  # the disk has room again: the next change writes everything
    paired_link(sim, "c")
    assert DeviceBook(threading.Lock(), devices_file).jids() == sim.accounts()


# --- a restarted simulator -----------------------------------------------------------------


def test_a_restarted_simulator_resumes_linked_devices_and_refuses_unlinked_ones(
    devices_file: Path, clock: VirtualClock
) -> None:
    before = SimWhatsApp(auto_pair=True, clock=clock, devices_file=devices_file)
    kept, _, kept_jid = paired_link(before, "kept")
    out, _, out_jid = paired_link(before, "out")
    _, _, cleared_jid = paired_link(before, "cleared")
    _, _, dropped_jid = paired_link(before, "dropped")
    kept.close(do_logout=False)
    out.close(do_logout=True)
    before.clear_auth("cleared", cleared_jid)
    before.drop(dropped_jid, "logged_out")
    before.close()

    after = SimWhatsApp(auto_pair=True, clock=clock, devices_file=devices_file)

    assert after.accounts() == [kept_jid, out_jid, cleared_jid, dropped_jid]
    assert open_link(after, "kept", kept_jid, generation=2)[1].items == [Connected(2, kept_jid)]
    for tenant, refused in (("out", out_jid), ("cleared", cleared_jid), ("dropped", dropped_jid)):
        (closed,) = open_link(after, tenant, refused, generation=2)[1].items
        assert isinstance(closed, Closed) and closed.reason is CloseReason.LOGGED_OUT
    _, _, new_jid = paired_link(after, "new")
    assert new_jid == jid(5)  # never one of the four above
    assert after.max_concurrent_sockets() == 1


def test_pairings_from_many_threads_all_reach_the_file(devices_file: Path) -> None:
    sim = SimWhatsApp(auto_pair=True, devices_file=devices_file)
    start = threading.Barrier(8)

    def pair_some(worker: int) -> None:
        start.wait(timeout=5)
        for n in range(10):
            paired_link(sim, f"w{worker}-{n}")

    threads = [threading.Thread(target=pair_some, args=(i,), name=f"pair-{i}") for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert not any(t.is_alive() for t in threads)
    kept = DeviceBook(threading.Lock(), devices_file).jids()
    assert sorted(kept) == sorted(sim.accounts())
    assert len(set(kept)) == 80


def test_the_simulator_named_sim_keeps_its_devices_in_the_home_folder(tmp_path: Path) -> None:
    config = Config(home=tmp_path / "home", transport="sim")
    first, owned = resolve_transport(config, "postgresql://unused/db")
    assert owned and isinstance(first, SimWhatsApp)
    assert first.devices_file == tmp_path / "home" / DEVICES_FILE
    _, _, device = paired_link(first)
    first.close()

    second, _ = resolve_transport(config, "postgresql://unused/db")

    assert isinstance(second, SimWhatsApp)
    assert open_link(second, "t1", device, generation=2)[1].items == [Connected(2, device)]
