"""The outbound listener: a message queued for a tenant this instance holds wakes the sender
at once; one for another instance's tenant does not."""

from __future__ import annotations

import queue

from wamgr.store.db import Database
from wamgr.store.outbound import CHANNEL
from wamgr.workers.outbound_listener import OutboundListener

WAIT_S = 5.0


def _notify(db: Database, payload: str) -> None:
    with db.connection() as conn:
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))


def test_a_notification_for_this_instance_wakes_the_sender_and_one_for_another_does_not(
    db: Database,
):
    woken: queue.SimpleQueue[str] = queue.SimpleQueue()
    listener = OutboundListener(db, "me", lambda: woken.put("woken"), connect_timeout_s=WAIT_S)
    listener.start()
    try:
        assert listener.wait_listening(WAIT_S)
        _notify(db, "other")
        _notify(db, "me")
        assert woken.get(timeout=WAIT_S) == "woken"
        assert woken.empty()  # "other", sent first, woke nobody
    finally:
        assert listener.stop(WAIT_S)
