"""Deadlines and asks into tenant actors: every wait bounded, failures named."""

from __future__ import annotations

import time

import pykka
import pytest

from wamgr.errors import ManagerStopped, OperationTimeout
from wamgr.local_tenants import Deadline, ask


class Slow(pykka.ThreadingActor):
    def on_receive(self, message: object) -> object:
        if message == "slow":
            time.sleep(0.5)
        if message == "boom":
            raise ValueError("boom")
        return message


@pytest.fixture
def slow():
    ref = Slow.start()
    yield ref
    if ref.is_alive():
        ref.stop()


def test_a_spent_deadline_names_the_call():
    deadline = Deadline("connect('t1')", 0.0)
    with pytest.raises(OperationTimeout, match="connect"):
        deadline.left()


def test_ask_returns_the_reply_within_the_deadline(slow):
    assert ask(slow, "hi", Deadline("hi", 5)) == "hi"


@pytest.mark.slow
def test_ask_times_out_with_operation_timeout(slow):
    with pytest.raises(OperationTimeout):
        ask(slow, "slow", Deadline("slow", 0.05))


def test_ask_re_raises_the_actors_exception(slow):
    with pytest.raises(ValueError, match="boom"):
        ask(slow, "boom", Deadline("boom", 5))


def test_asking_a_stopped_actor_is_manager_stopped(slow):
    slow.stop()
    with pytest.raises(ManagerStopped):
        ask(slow, "hi", Deadline("hi", 5))
