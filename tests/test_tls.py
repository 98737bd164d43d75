"""The process's one TLS context: loaded once, and it verifies servers."""

from __future__ import annotations

import ssl

from wamgr.tls import default_tls


def test_the_context_is_loaded_once_and_verifies_certificates_and_host_names() -> None:
    context = default_tls()
    assert default_tls() is context
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0  # a CA bundle was loaded
