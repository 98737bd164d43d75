"""Standard Webhooks signatures (https://www.standardwebhooks.com/), made by the official
``standardwebhooks`` package, so any receiver using a Standard Webhooks library accepts them.

The secret is ``whsec_`` followed by base64 of the key (24 to 64 bytes). A delivery carries
``webhook-id``, ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``:
``v1,`` + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}")). wamgr checks the secret's
format itself (the package takes any base64), so a short or malformed one is refused early.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime

from standardwebhooks import Webhook

from wamgr.errors import ConfigError

SECRET_PREFIX = "whsec_"
#: How to make a secret, for error messages and docs.
MAKE_SECRET = (
    "python3 -c 'import base64, secrets; "
    'print("whsec_" + base64.b64encode(secrets.token_bytes(32)).decode())\''
)


def decode_secret(secret: str, name: str = "WAMGR_WEBHOOK_SECRET") -> bytes:
    """The key of a ``whsec_<base64>`` secret; ConfigError (naming ``name``) if it is not one."""
    text = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not 24 <= len(key) <= 64:
        raise ConfigError(
            f"{name} must be 'whsec_' followed by base64 of 24 to 64 random "
            f"bytes; make one with: {MAKE_SECRET}"
        )
    return key


def sign(key: bytes, webhook_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header value of one delivery attempt."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    return Webhook(key).sign(msg_id=webhook_id, timestamp=moment, data=body)
