"""The real WhatsApp transport, on neonize (whatsmeow through a Go core).

The parent process uses :class:`NeonizeTransport` only; it never imports neonize itself.
Neonize runs in host processes (``host.py``), whose links are ``link.py``. See
docs/neonize.md for why, and for every event and what it leads to.
"""

from wamgr.transport.neonize.transport import NeonizeTransport

__all__ = ["NeonizeTransport"]
