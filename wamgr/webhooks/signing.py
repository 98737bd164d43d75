"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

The secret is ``whsec_`` followed by base64 of the key (24 to 64 bytes). A delivery carries
``webhook-id``, ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``:
``v1,`` + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}")). A receiver recomputes it
with the same secret, compares in constant time and refuses timestamps too far from now.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from wamgr.errors import ConfigError

SECRET_PREFIX = "whsec_"
#: How to make a secret, for error messages and docs.
MAKE_SECRET = (
    "python3 -c 'import base64, secrets; "
    'print("whsec_" + base64.b64encode(secrets.token_bytes(32)).decode())\''
)


def decode_secret(secret: str) -> bytes:
    """The key of a ``whsec_<base64>`` secret; ConfigError if it is not one."""
    text = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not 24 <= len(key) <= 64:
        raise ConfigError(
            "WAMGR_WEBHOOK_SECRET must be 'whsec_' followed by base64 of 24 to 64 random "
            f"bytes; make one with: {MAKE_SECRET}"
        )
    return key


def sign(key: bytes, webhook_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header value of one delivery attempt."""
    content = f"{webhook_id}.{timestamp}.{body}".encode()
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(key: bytes, webhook_id: str, timestamp: int, body: str, header: str) -> bool:
    """Whether ``header`` (space-separated signatures) holds a valid v1 signature."""
    expected = sign(key, webhook_id, timestamp, body)
    return any(hmac.compare_digest(expected, sig) for sig in header.split())
