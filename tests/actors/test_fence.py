"""LinkFence, and the keeper tripping it: a fenced link closes on the keeper's thread."""

from __future__ import annotations

import threading

from wamgr.actors.fence import LinkFence


class _Link:
    def __init__(self) -> None:
        self.closes: list[tuple[bool, str]] = []

    def close(self, do_logout: bool) -> None:
        self.closes.append((do_logout, threading.current_thread().name))


def test_trip_closes_the_armed_link_once_without_logout_on_the_callers_thread():
    fence, link = LinkFence("t1", 7), _Link()
    assert fence.arm(link)
    thread = threading.Thread(target=fence.trip, args=("lost",), name="keeper")
    thread.start()
    thread.join(5)
    fence.trip("again")
    assert fence.tripped
    assert link.closes == [(False, "keeper")]


def test_a_tripped_fence_refuses_a_link():
    fence = LinkFence("t1", 7)
    fence.trip("lost before the link was built")
    assert not fence.arm(_Link())


def test_a_link_that_fails_to_close_does_not_break_the_keeper():
    class Broken:
        def close(self, do_logout: bool) -> None:
            raise OSError("gone")

    fence = LinkFence("t1", 7)
    fence.arm(Broken())
    fence.trip("lost")  # logged, not raised
    assert fence.tripped
