"""The process's one TLS context for outgoing HTTPS (webhook deliveries, media fetches)."""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def default_tls() -> ssl.SSLContext:
    """The default TLS settings (certifi's CAs, or SSL_CERT_FILE), loaded once per process:
    loading the CA bundle costs about 0.1 s of CPU, too much to pay at every manager start
    or media fetch. An SSLContext is safe to share between threads and clients."""
    return httpx.create_ssl_context()
