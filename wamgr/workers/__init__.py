"""Every background thread wamgr owns, as one kind of object: a :class:`Worker`.

A worker is a named ``wamgr-...`` thread, started by ``start()`` (never by its constructor),
woken by ``wake()`` and ended by ``stop(timeout)``, which says whether it ended. Its users:
the scheduler, the claim loop, the sweeper, the status writer, the call runners, the event
dispatcher, the lease keeper's renewer and the outbound sender, each in its own module here
(the webhook sender, in :mod:`wamgr.webhooks`, is one too). The threads that LISTEN on a
connection of their own are a :class:`~wamgr.workers.listening.ListeningWorker`, which owns
that connection's life: the command, reply, freed-lease and outbound listeners and the status
feed.
"""

from wamgr.workers.base import AT_ONCE, Worker, WorkerStopped
from wamgr.workers.periodic import PeriodicWorker

__all__ = ["AT_ONCE", "PeriodicWorker", "Worker", "WorkerStopped"]
