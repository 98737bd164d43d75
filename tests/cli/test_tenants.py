"""``wamgr tenants add|remove|list``, and how every command refuses a bad tenant id."""

from __future__ import annotations

import json

import pytest

from .conftest import STATUS_KEYS, Wamgr, explain, ok, stored_statuses

# --- tenants add / list --------------------------------------------------------------------


def test_tenants_add_says_added_and_then_already_wanted(wamgr: Wamgr) -> None:
    assert ok(wamgr("tenants", "add", "a", "b")) == "a: added\nb: added\n"

    assert ok(wamgr("tenants", "add", "a")) == "a: already wanted connected\n"
    assert ok(wamgr("tenants", "add", "b", "c")) == "b: already wanted connected\nc: added\n"


def test_tenants_list_shows_desired_and_state(wamgr: Wamgr) -> None:
    ok(wamgr("tenants", "add", "b", "a"))

    lines = ok(wamgr("tenants", "list")).splitlines()

    assert [line.split("\t") for line in lines] == [
        ["a", "connected", "stopped"],
        ["b", "connected", "stopped"],
    ]


def test_tenants_list_json_is_a_list_of_statuses(wamgr: Wamgr) -> None:
    assert json.loads(ok(wamgr("tenants", "list", "--json"))) == []
    ok(wamgr("tenants", "add", "b", "a"))

    listed = json.loads(ok(wamgr("tenants", "list", "--json")))

    assert [entry["tenant_id"] for entry in listed] == ["a", "b"]
    for entry in listed:
        assert set(entry) == STATUS_KEYS
        assert entry["desired"] == "connected"
        assert entry["state"] == "stopped"


# --- invalid tenant ids --------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [["tenants", "add"], ["tenants", "remove"], ["tenants", "remove", "--purge"], ["status"]],
    ids=" ".join,
)
@pytest.mark.parametrize("tenant_id", ["bad id", "x" * 65, "", "a/b", "ü"], ids=repr)
def test_invalid_tenant_id_exits_2_saying_what_is_allowed(
    wamgr: Wamgr, command: list[str], tenant_id: str
) -> None:
    result = wamgr(*command, tenant_id)

    assert result.exit_code == 2, explain(result)
    assert result.stdout == ""
    assert f"invalid tenant id {tenant_id!r}" in result.stderr
    assert "1 to 64 characters" in result.stderr
    assert "a letter, a digit, '_', '.' or '-'" in result.stderr
    assert "Traceback" not in result.stderr


def test_one_invalid_tenant_id_adds_none_of_them(wamgr: Wamgr) -> None:
    result = wamgr("tenants", "add", "good", "bad id")

    assert result.exit_code == 2, explain(result)
    assert stored_statuses(wamgr) == {}


def test_longest_allowed_tenant_id_is_accepted(wamgr: Wamgr) -> None:
    longest = "A-z_0." + "x" * 58

    assert ok(wamgr("tenants", "add", longest)) == f"{longest}: added\n"
    assert json.loads(ok(wamgr("status", longest, "--json")))["tenant_id"] == longest


# --- tenants remove ------------------------------------------------------------------------


def test_tenants_remove_wants_the_tenant_stopped_and_keeps_it(wamgr: Wamgr) -> None:
    ok(wamgr("tenants", "add", "a", "b"))

    assert ok(wamgr("tenants", "remove", "a")) == "a: removed\n"

    statuses = stored_statuses(wamgr)
    assert statuses["a"]["desired"] == "stopped"
    assert statuses["a"]["state"] == "stopped"
    assert statuses["b"]["desired"] == "connected"
    assert ok(wamgr("tenants", "list")).splitlines()[0].split("\t") == [
        "a",
        "stopped",
        "stopped",
    ]


def test_tenants_remove_of_unknown_tenant_exits_3_as_status_does(wamgr: Wamgr) -> None:
    result = wamgr("tenants", "remove", "ghost")

    assert result.exit_code == 3 == wamgr("status", "ghost").exit_code, explain(result)
    assert result.stdout == "ghost: unknown\n"
    assert result.stderr == "wamgr: nothing to remove: unknown tenant ghost\n"
    assert stored_statuses(wamgr) == {}


def test_tenants_remove_removes_the_known_ones_and_exits_3_for_the_rest(wamgr: Wamgr) -> None:
    ok(wamgr("tenants", "add", "a", "b"))

    result = wamgr("tenants", "remove", "ghost", "a", "phantom", "b")

    assert result.exit_code == 3, explain(result)
    assert result.stdout == "ghost: unknown\na: removed\nphantom: unknown\nb: removed\n"
    assert result.stderr == "wamgr: nothing to remove: unknown tenant ghost, phantom\n"
    assert {s["desired"] for s in stored_statuses(wamgr).values()} == {"stopped"}


def test_tenants_remove_purge_forgets_the_tenant(wamgr: Wamgr) -> None:
    ok(wamgr("tenants", "add", "a", "b"))

    assert ok(wamgr("tenants", "remove", "--purge", "b")) == "b: purged\n"

    assert list(stored_statuses(wamgr)) == ["a"]
    assert wamgr("status", "b").exit_code == 3
    again = wamgr("tenants", "remove", "--purge", "b")
    assert again.exit_code == 3, explain(again)
    assert again.stdout == "b: unknown\n"


def test_purged_tenant_can_be_added_again(wamgr: Wamgr) -> None:
    ok(wamgr("tenants", "add", "a"))
    ok(wamgr("tenants", "remove", "--purge", "a"))

    assert ok(wamgr("tenants", "add", "a")) == "a: added\n"


# --- settings: tenants add|set, status --json ----------------------------------------------

PROXY = "socks5://alice:cl1-pw@10.0.0.5:1080"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_tenants_add_with_settings_and_set_changes_only_what_is_given(
    wamgr: Wamgr, database_url: str
) -> None:
    added = wamgr(
        "tenants", "add", "shop-1",
        "--proxy", PROXY,
        "--webhook", "https://crm.example/h",
        "--events", "message.received,message.ack",
        "--send-rate", "12",
        env={"WAMGR_TENANT_WEBHOOK_SECRET": SECRET},
    )  # fmt: skip
    changed = wamgr("tenants", "set", "shop-1", "--send-burst", "3", "--metadata", '{"a": 1}')
    shown = json.loads(ok(wamgr("tenants", "set", "shop-1", "--json")))
    status = json.loads(ok(wamgr("status", "shop-1", "--json")))

    assert ok(added) == "shop-1: added\n"
    assert "send_burst\t3" in ok(changed)
    assert shown == {
        "proxy": "socks5://alice:***@10.0.0.5:1080",
        "webhooks": [
            {
                "url": "https://crm.example/h",
                "events": ["message.received", "message.ack"],
                "secret": "***",
            }
        ],
        "send_rate": 12.0,
        "send_burst": 3,
        "metadata": {"a": 1},
    }
    assert status["settings"] == shown and status["desired"] == "connected"
    for result in (added, changed):
        assert "cl1-pw" not in result.output and SECRET not in result.output
    assert "cl1-pw" not in json.dumps(status)


def test_a_bad_setting_exits_2_naming_it_and_an_unknown_tenant_3(wamgr: Wamgr) -> None:
    ok(wamgr("tenants", "add", "shop-1"))

    bad = wamgr("tenants", "set", "shop-1", "--proxy", "ftp://x:1")
    orphan = wamgr("tenants", "set", "shop-1", "--events", "message.ack")
    unknown = wamgr("tenants", "set", "nobody", "--send-rate", "3")

    assert bad.exit_code == 2 and "proxy: the scheme must be" in bad.output, explain(bad)
    assert orphan.exit_code == 2 and "--webhook" in orphan.output, explain(orphan)
    assert unknown.exit_code == 3, explain(unknown)
