"""Standard Webhooks signatures: verified by the official ``standardwebhooks`` package (what
a receiver runs), checked against the spec's recipe, and the secret's format."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from wamgr import Config, ConfigError
from wamgr.webhooks.signing import decode_secret, sign

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_a_signature_is_v1_hmac_sha256_of_id_timestamp_and_body() -> None:
    key = decode_secret(SECRET)
    body = '{"type": "message.received"}'

    signature = sign(key, "msg_1", 1_700_000_000, body)

    # The recipe of https://www.standardwebhooks.com/, written out here rather than taken
    # from wamgr: base64 of HMAC-SHA256 over "id.timestamp.body", prefixed "v1,".
    raw = base64.b64decode(SECRET.removeprefix("whsec_"))
    digest = hmac.new(raw, b"msg_1.1700000000." + body.encode(), hashlib.sha256).digest()
    assert signature == "v1," + base64.b64encode(digest).decode()


def test_the_official_package_accepts_the_signature_and_refuses_any_change() -> None:
    key = decode_secret(SECRET)
    now = int(time.time())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(now),
        "webhook-signature": sign(key, "msg_1", now, '{"a": 1}'),
    }
    receiver = Webhook(SECRET)

    assert receiver.verify('{"a": 1}', headers) == {"a": 1}
    with pytest.raises(WebhookVerificationError):
        receiver.verify('{"a": 2}', headers)
    with pytest.raises(WebhookVerificationError):
        receiver.verify('{"a": 1}', {**headers, "webhook-id": "msg_2"})
    with pytest.raises(WebhookVerificationError):
        Webhook(base64.b64encode(b"k" * 32).decode()).verify('{"a": 1}', headers)


@pytest.mark.parametrize(
    "secret",
    ["hunter2", "whsec_", "whsec_not base64!", "whsec_" + base64.b64encode(b"short").decode()],
)
def test_a_secret_that_is_not_whsec_base64_of_24_to_64_bytes_is_refused(secret: str) -> None:
    with pytest.raises(ConfigError, match=r"'whsec_' followed by base64 of 24 to 64"):
        decode_secret(secret)


def test_a_secret_without_its_prefix_is_accepted() -> None:
    assert decode_secret(SECRET.removeprefix("whsec_")) == decode_secret(SECRET)


def test_webhook_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="WAMGR_WEBHOOK_SECRET is not"):
        Config(webhook_urls=("https://example.com/hooks",))
    with pytest.raises(ConfigError, match="whsec_"):
        Config(webhook_urls=("https://example.com/hooks",), webhook_secret="hunter2")
    with pytest.raises(ConfigError, match="not an http"):
        Config(webhook_urls=("ftp://example.com",), webhook_secret="x")
    env = {
        "WAMGR_WEBHOOK_URL": "https://a.example/h, https://b.example/h",
        "WAMGR_WEBHOOK_SECRET": SECRET,
    }
    assert Config.load(env=env).webhook_urls == ("https://a.example/h", "https://b.example/h")
