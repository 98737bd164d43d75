"""The real WhatsApp transport, on neonize (whatsmeow through a Go core).

The parent process uses :class:`NeonizeTransport` (configured by :class:`NeonizeSettings`)
only; it never imports neonize itself. Neonize runs in host processes (``host.py``), whose
links are ``link.py``; what every neonize event leads to is the table in ``events.py``. See
docs/neonize.md for why.
"""

from wamgr.transport.neonize.settings import NeonizeSettings
from wamgr.transport.neonize.transport import NeonizeTransport

__all__ = ["NeonizeSettings", "NeonizeTransport"]
