"""HostStats: counters of the neonize links of one process (what a host's ``stats`` answers)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class HostStats:
    """Counters of one process's links (``stats`` of a neonize host)."""

    connects: int = 0  # connect() calls made
    dial_failures: int = 0
    abandoned: int = 0  # connect() calls that never returned (threads leaked)
    open_links: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, n: int = 1) -> None:
        """Add ``n`` to counter ``name``."""
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def snapshot(self) -> dict[str, int]:
        """The counters as a dict."""
        with self._lock:
            return {k: v for k, v in vars(self).items() if not k.startswith("_")}
