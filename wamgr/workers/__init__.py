"""Every background thread wamgr owns, as one kind of object: a :class:`Worker`.

A worker is a named ``wamgr-...`` thread, started by ``start()`` (never by its constructor),
woken by ``wake()`` and ended by ``stop(timeout)``, which says whether it ended. Its users:
the scheduler, the claim loop, the sweeper, the status writer, the command listener, the
freed-lease listener, the event dispatcher and the lease keeper's renewer, each in its own
module here (the webhook sender, in :mod:`wamgr.webhooks`, is one too).
"""

from wamgr.workers.base import AT_ONCE, Worker, WorkerStopped
from wamgr.workers.periodic import PeriodicWorker

__all__ = ["AT_ONCE", "PeriodicWorker", "Worker", "WorkerStopped"]
