"""ThreadStarter: every start handed over is done (on its workers, or on the caller's thread
once stopped), a failing one is contained, and an actor started through it answers."""

from __future__ import annotations

import threading

import pykka

from wamgr.actors.registry import start_soon
from wamgr.workers.thread_starter import ThreadStarter

WAIT_S = 5.0


def test_every_start_runs_on_a_worker_and_a_failing_one_is_contained(logs):
    starter = ThreadStarter(workers=3)
    starter.start()
    ran: list[str] = []
    lock = threading.Lock()
    everything = threading.Semaphore(0)

    def start(n: int):
        def run() -> None:
            with lock:
                ran.append(threading.current_thread().name)
            everything.release()
            if n == 5:
                raise RuntimeError("no thread for you")

        return run

    try:
        for n in range(30):
            starter.submit(start(n))
        assert all(everything.acquire(timeout=WAIT_S) for _ in range(30))
    finally:
        assert starter.stop(WAIT_S)
    assert {name.rsplit("-", 1)[0] for name in ran} == {"wamgr-thread-starter"}
    assert len(set(ran)) == 3  # round robin over the workers
    assert any("starting a thread failed" in line for line in logs)


def test_a_start_handed_over_after_stop_runs_on_the_callers_thread():
    starter = ThreadStarter(workers=2)
    starter.start()
    assert starter.stop(WAIT_S)
    ran: list[str] = []
    starter.submit(lambda: ran.append(threading.current_thread().name))
    assert ran == [threading.current_thread().name]


def test_an_actor_started_soon_answers_what_was_sent_before_its_thread_ran():
    class Echo(pykka.ThreadingActor):
        def on_receive(self, message: object) -> object:
            return message

    held: list = []
    ref = start_soon(Echo(), held.append)  # its thread not started yet
    answer = ref.ask("hello", block=False)
    assert not any(t.name.startswith("Echo-") for t in threading.enumerate())
    held[0]()  # the starter starts it now
    try:
        assert answer.get(timeout=WAIT_S) == "hello"
    finally:
        ref.stop()
