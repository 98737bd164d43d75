"""Per-tenant settings as values: each field validated (InvalidSetting naming it), changes
applied on top of what is set, and secrets masked wherever settings are shown."""

from __future__ import annotations

import pytest

from wamgr import TenantState, UnknownTenant
from wamgr.errors import InvalidSetting
from wamgr.status import Desired
from wamgr.tenant_settings import MASK, TenantSettings, TenantWebhook, mask_url

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
PROXY = "socks5://alice:s3cr3t-pw@10.0.0.5:1080"


def test_a_full_set_of_settings_is_kept_and_shown_masked() -> None:
    settings = TenantSettings().changed(
        proxy=PROXY,
        webhooks=[
            {"url": "https://crm.example/h", "events": ["message.received"], "secret": SECRET},
            "https://user:tok@ops.example/all",
        ],
        send_rate=12,
        send_burst=3,
        metadata={"crm_id": 42, "tags": ["vip"]},
    )

    assert settings.proxy == PROXY  # kept as given: the link needs it
    assert settings.webhooks[0] == TenantWebhook(
        "https://crm.example/h", ("message.received",), SECRET
    )
    assert (settings.send_rate, settings.send_burst) == (12.0, 3)
    shown = settings.shown()
    assert shown == {
        "proxy": f"socks5://alice:{MASK}@10.0.0.5:1080",
        "webhooks": [
            {"url": "https://crm.example/h", "events": ["message.received"], "secret": MASK},
            {"url": f"https://user:{MASK}@ops.example/all", "events": [], "secret": None},
        ],
        "send_rate": 12.0,
        "send_burst": 3,
        "metadata": {"crm_id": 42, "tags": ["vip"]},
    }
    for text in (repr(settings), str(shown), repr(settings.webhooks)):
        assert "s3cr3t-pw" not in text and SECRET not in text and "tok@" not in text


def test_changes_apply_on_top_and_none_clears() -> None:
    settings = TenantSettings().changed(proxy=PROXY, send_rate=5)

    changed = settings.changed(send_rate=None, metadata={"a": 1})

    assert changed.proxy == PROXY and changed.send_rate is None and changed.metadata == {"a": 1}
    assert changed.changed(proxy="").proxy is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"proxy": "ftp://h:21"}, "proxy"),
        ({"proxy": "socks5://host"}, "proxy"),  # no port
        ({"proxy": "socks5://h:1080/path"}, "proxy"),
        ({"proxy": "socks5://h:99999"}, "proxy"),
        ({"proxy": 42}, "proxy"),
        ({"webhooks": "https://a.example"}, "webhooks"),  # a list is wanted
        ({"webhooks": [{"url": "mailto:x@y"}]}, "webhooks[0].url"),
        ({"webhooks": [{"url": "https://a.example", "events": ["nope"]}]}, "webhooks[0].events"),
        ({"webhooks": [{"url": "https://a.example", "secret": "hunter2"}]}, "webhooks[0].secret"),
        ({"webhooks": [{"url": "https://a.example", "secret": MASK}]}, "webhooks[0].secret"),
        ({"webhooks": [{"url": "https://a.example", "colour": 1}]}, "webhooks[0].colour"),
        ({"webhooks": ["https://a.example", "https://a.example"]}, "webhooks"),
        ({"webhooks": [f"https://a.example/{n}" for n in range(11)]}, "webhooks"),
        ({"send_rate": 0}, "send_rate"),
        ({"send_rate": float("nan")}, "send_rate"),
        ({"send_rate": True}, "send_rate"),
        ({"send_burst": 2.5}, "send_burst"),
        ({"send_burst": 0}, "send_burst"),
        ({"metadata": [1, 2]}, "metadata"),
        ({"metadata": {"big": "x" * 20_000}}, "metadata"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_bad_value_is_refused_naming_its_field(changes: dict, field: str) -> None:
    with pytest.raises(InvalidSetting) as caught:
        TenantSettings().changed(**changes)
    assert caught.value.field == field
    assert caught.value.format_message().startswith(f"{field}: ")


def test_a_refused_proxy_never_repeats_its_password() -> None:
    with pytest.raises(InvalidSetting) as caught:
        TenantSettings().changed(proxy="socks5://bob:hunter2@h:1080/x")
    assert "hunter2" not in caught.value.format_message()


def test_events_may_be_a_comma_separated_string_and_star_means_all() -> None:
    hooks = (
        TenantSettings()
        .changed(
            webhooks=[
                {"url": "https://a.example", "events": "message.received, message.ack"},
                {"url": "https://b.example", "events": "*"},
            ]
        )
        .webhooks
    )
    assert hooks[0].events == ("message.received", "message.ack")
    assert hooks[0].wants("message.ack") and not hooks[0].wants("session.status")
    assert hooks[1].events == () and hooks[1].wants("session.status")


def test_mask_url_leaves_a_url_without_password_alone() -> None:
    assert mask_url("http://proxy.example:3128") == "http://proxy.example:3128"
    assert mask_url("http://u:p@proxy.example:3128") == f"http://u:{MASK}@proxy.example:3128"


# --- through the manager: stored, read at every dial, masked when shown ----------------------


def test_configure_stores_settings_that_the_next_dial_uses(make_manager, sim) -> None:
    mgr = make_manager()
    mgr.connect("t1")
    mgr.wait_for("t1", TenantState.CONNECTED, timeout=5)

    stored = mgr.configure("t1", proxy=PROXY, send_rate=10)
    mgr.reconnect("t1")
    mgr.wait_for("t1", TenantState.CONNECTED, timeout=5)

    assert sim.dial_proxies("t1") == [None, PROXY]
    assert mgr.settings("t1") == stored and stored.send_rate == 10.0
    assert mgr.configure("t1", send_burst=4).proxy == PROXY  # keywords change only themselves
    replaced = mgr.configure("t1", TenantSettings(metadata={"a": 1}))  # an object: all of them
    assert (replaced.proxy, replaced.send_rate, replaced.metadata) == (None, None, {"a": 1})


def test_a_proxy_that_refuses_is_a_dial_failure_that_says_so(make_manager, sim) -> None:
    mgr = make_manager()
    sim.refuse_proxy(PROXY)
    mgr.configure("t1", create=True, proxy=PROXY)

    mgr.connect("t1")
    status = mgr.wait_for("t1", TenantState.BACKOFF, timeout=5)

    assert "proxy socks5://10.0.0.5:1080 refused the connection" in status.last_error
    assert "s3cr3t-pw" not in status.last_error


def test_configure_refuses_an_unknown_tenant_unless_asked_to_create_it(make_manager) -> None:
    mgr = make_manager()
    with pytest.raises(UnknownTenant):
        mgr.configure("nobody", send_rate=5)
    with pytest.raises(UnknownTenant):
        mgr.settings("nobody")

    mgr.configure("new", create=True, send_rate=5)

    record = mgr.tenants_store.get("new")
    assert record is not None and record.desired is Desired.STOPPED  # not dialled yet
    assert mgr.settings("new").send_rate == 5.0


def test_secrets_never_reach_the_log(make_manager, logs) -> None:
    mgr = make_manager()
    mgr.configure(
        "t1",
        create=True,
        proxy=PROXY,
        webhooks=[{"url": "https://crm.example/h", "secret": SECRET}],
    )
    mgr.connect("t1")
    text = "\n".join(logs)
    assert "settings changed" in text
    assert "s3cr3t-pw" not in text and SECRET not in text
