"""Probe actors for the pooled-actor tests (tests/actors/test_pool*.py), imported by name.

A probe records its life (start, each message, stop, failure) in a :class:`Log` and answers
each message as :func:`behave` says, so one actor class serves every scenario, on a pool or
(:class:`ThreadingProbe`) on a thread of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pykka

from wamgr.actors.pool import ActorPool, PooledActor

WAIT = 5.0  # seconds any wait for something that should happen may take at most


class Log:
    """What an actor did, in order, for a test to wait on."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.changed = threading.Condition()

    def add(self, item: Any) -> None:
        with self.changed:
            self.items.append(item)
            self.changed.notify_all()

    def wait_for(self, predicate: Callable[[list[Any]], bool], timeout: float = WAIT) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: predicate(self.items), timeout):
                raise AssertionError(f"not reached within {timeout} s: {self.items!r}")


def behave(message: Any) -> Any:
    """The probes' handler: ``("raise", exc)`` raises, ``("wait", entered, gate)`` blocks
    until ``gate`` is set, ``("call", function)`` is answered with ``function()``; any other
    message is answered with itself."""
    match message:
        case ("raise", exc):
            raise exc
        case ("wait", entered, gate):
            entered.set()
            assert gate.wait(WAIT), "the gate was never opened"
        case ("call", function):
            return function()
    return message


class _Probe:
    """Records its life in a :class:`Log`: start, each message, stop, failure."""

    log: Log

    def on_start(self) -> None:
        self.log.add("start")

    def on_stop(self) -> None:
        self.log.add("stop")

    def on_failure(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.log.add(("failure", exc_type))

    def on_receive(self, message: Any) -> Any:
        self.log.add(message)
        return behave(message)


class PooledProbe(_Probe, PooledActor):
    def __init__(self, pool: ActorPool, log: Log) -> None:
        super().__init__(pool)
        self.log = log


class ThreadingProbe(_Probe, pykka.ThreadingActor):
    def __init__(self, log: Log) -> None:
        super().__init__()
        self.log = log


def occupy(ref: pykka.ActorRef) -> threading.Event:
    """Block ``ref``'s handler (and the thread it runs on); returns the gate that frees it."""
    entered, gate = threading.Event(), threading.Event()
    ref.tell(("wait", entered, gate))
    assert entered.wait(WAIT)
    return gate


def stop_all(refs: list[pykka.ActorRef]) -> None:
    """Stop what is still alive of ``refs`` (stopping a stopped actor is no error)."""
    for ref in refs:
        ref.stop(timeout=WAIT)
