"""wamgr's errors present themselves: one line for a person, an exit code for the CLI, an HTTP
status for the API, and the names a Python caller catches are public."""

from __future__ import annotations

import inspect
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import wamgr
from wamgr import errors, message_errors
from wamgr.api.errors import error_response
from wamgr.cli.main import WamgrGroup
from wamgr.error_text import SHOWN_CHARS_MAX
from wamgr.errors import WamgrError

#: One instance of every error wamgr defines, made as wamgr makes it.
SAMPLES: dict[type[WamgrError], WamgrError] = {
    errors.WamgrError: errors.WamgrError("something went wrong"),
    errors.ConfigError: errors.ConfigError("lease_ttl must be more than renew_deadline"),
    errors.InvalidTenantId: errors.InvalidTenantId("has space"),
    errors.UnknownTenant: errors.UnknownTenant("t1"),
    errors.NotConnected: errors.NotConnected("t1", "backoff"),
    errors.OperationTimeout: errors.OperationTimeout("connect('t1')", 10.0),
    errors.HolderNotAnswering: errors.HolderNotAnswering("t1", "inst-2", "send_text('t1')", 5.0),
    errors.ManagerStopped: errors.ManagerStopped(),
    errors.DatabaseUnavailable: errors.DatabaseUnavailable("connection refused"),
    errors.InvalidLockKey: errors.InvalidLockKey(""),
    errors.InvalidDuration: errors.InvalidDuration("ttl", -1, "a number of seconds"),
    errors.InvalidMessageId: errors.InvalidMessageId(""),
    errors.LockBusy: errors.LockBusy("t1:p", 2.0, datetime(2026, 1, 1, tzinfo=UTC), "inst-1"),
    errors.NotPairing: errors.NotPairing("t1", "connected"),
    errors.InvalidPhone: errors.InvalidPhone("12345"),
    errors.HeldElsewhere: errors.HeldElsewhere("t1", "inst-2", "clear its credentials"),
    errors.InvalidRecipient: errors.InvalidRecipient(" "),
    errors.BodyTooLarge: errors.BodyTooLarge(1024),
    errors.ApiKeyRequired: errors.ApiKeyRequired(given=False),
    errors.LockNotHeld: errors.LockNotHeld("t1:p", 7),
    errors.PairingFailed: errors.PairingFailed("t1", "logged_out", "no phone scanned the QR"),
    errors.JidInUse: errors.JidInUse("t2", "15550000001@s.whatsapp.net", "t1"),
    errors.InstanceIdInUse: errors.InstanceIdInUse(
        "gw-1", "web-1", 4242, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
    ),
    errors.StartCancelled: errors.StartCancelled(),
    message_errors.InvalidMessage: message_errors.InvalidMessage("text", "must not be empty"),
    message_errors.UnknownMessage: message_errors.UnknownMessage("t1", "m-1"),
    message_errors.MessageStateConflict: message_errors.MessageStateConflict(
        "t1", "m-1", "sent", "a queued message can be cancelled"
    ),
    errors.InvalidSetting: errors.InvalidSetting("proxy", "give the proxy's port"),
    errors.MediaRefused: errors.MediaRefused("mime", "WhatsApp takes an image as image/jpeg"),
    errors.MediaTooLarge: errors.MediaTooLarge("image", 6_000_000, 5_242_880),
    errors.DeliveryNotFound: errors.DeliveryNotFound(42),
    errors.MediaUnavailable: errors.MediaUnavailable("t1", "m-1", "not received here"),
}

#: Errors only the HTTP API raises (a Python caller never sees them).
HTTP_ONLY = {errors.BodyTooLarge, errors.ApiKeyRequired, errors.LockNotHeld}

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _defined_errors() -> set[type[WamgrError]]:
    return {
        value
        for module in (errors, message_errors)
        for value in vars(module).values()
        if inspect.isclass(value) and issubclass(value, WamgrError)
    }


def _sample_ids(kinds) -> list[str]:
    return [kind.__name__ for kind in kinds]


def test_every_error_has_a_sample_here():
    assert _defined_errors() == set(SAMPLES)


@pytest.mark.parametrize("kind", list(SAMPLES), ids=_sample_ids(SAMPLES))
def test_the_message_is_one_line_that_says_what_to_do(kind):
    message = SAMPLES[kind].format_message()
    assert message and message == message.strip()
    assert not _CONTROL.search(message), message
    assert message == str(SAMPLES[kind])


# --- values from users, as the message shows them ----------------------------------------

HOSTILE = "a\nb\tc\x1b[31m\x00"
#: Errors that carry a value as a user (or a peer) gave it, made with a hostile one. (Errors
#: about a tenant take its id once validated, so they are not here.)
WITH_VALUES = {
    "InvalidTenantId": lambda v: errors.InvalidTenantId(v),
    "InvalidLockKey": lambda v: errors.InvalidLockKey(v),
    "InvalidDuration": lambda v: errors.InvalidDuration("ttl", v, "a number of seconds"),
    "InvalidMessageId": lambda v: errors.InvalidMessageId(v),
    "LockBusy": lambda v: errors.LockBusy(v, 0.0, None, None),  # a valid key may hold a \n
    "InvalidPhone": lambda v: errors.InvalidPhone(v),
    "InvalidRecipient": lambda v: errors.InvalidRecipient(v),
    "LockNotHeld": lambda v: errors.LockNotHeld(v, 7),
    "DatabaseUnavailable": lambda v: errors.DatabaseUnavailable(v),
    "PairingFailed": lambda v: errors.PairingFailed("t1", "failed", v),
    "InvalidMessage": lambda v: message_errors.InvalidMessage("text", v),
    "UnknownMessage": lambda v: message_errors.UnknownMessage("t1", v),
}


@pytest.mark.parametrize(
    "name",
    [name for name in WITH_VALUES],
)
def test_a_value_with_line_breaks_and_control_characters_stays_on_one_line(name):
    message = WITH_VALUES[name](HOSTILE).format_message()
    assert not _CONTROL.search(message), message


@pytest.mark.parametrize(
    "name",
    [
        name
        for name in (
            "InvalidTenantId",
            "InvalidLockKey",
            "InvalidRecipient",
            "InvalidDuration",
            "InvalidMessageId",
            "InvalidPhone",
        )
    ],
)
def test_a_huge_invalid_value_is_not_repeated_whole(name):
    message = WITH_VALUES[name]("x" * 100_000).format_message()
    assert "x" * (SHOWN_CHARS_MAX + 1) not in message
    assert len(message) < 1000


# --- the CLI: one line on stderr and the documented exit code -----------------------------


def _documented_exit_codes() -> dict[str, int]:
    """``error name -> exit code`` from the table in docs/troubleshooting.md."""
    text = (Path(__file__).parents[1] / "docs" / "troubleshooting.md").read_text("utf-8")
    table = text.split("### Other exit codes", 1)[1]
    codes: dict[str, int] = {}
    for line in table.splitlines():
        row = re.match(r"\| (\d+) \| (.*) \|$", line)
        if row:
            for name in re.findall(r"`([A-Z]\w+)`", row.group(2)):
                codes[name] = int(row.group(1))
        elif codes and not line.startswith("|"):
            break
    return codes


def test_the_documented_exit_codes_are_the_errors_own():
    documented = _documented_exit_codes()
    assert len(documented) >= 14
    by_name = {kind.__name__: kind for kind in SAMPLES}
    assert {name: by_name[name].exit_code for name in documented} == documented
    assert {kind.exit_code for kind in SAMPLES} <= set(documented.values())


@pytest.mark.parametrize("kind", list(SAMPLES), ids=_sample_ids(SAMPLES))
def test_the_cli_prints_one_line_and_exits_with_the_errors_code(kind):
    error = SAMPLES[kind]

    @click.group(cls=WamgrGroup)
    def cli() -> None:
        pass

    @cli.command()
    def fail() -> None:
        raise error

    result = CliRunner().invoke(cli, ["fail"])
    assert result.exit_code == kind.exit_code
    assert kind.exit_code != 0 or kind is errors.StartCancelled  # a stop during start is no error
    assert result.stderr == f"wamgr: {error.format_message()}\n"
    assert result.stdout == ""


# --- the HTTP API: the error's status, its name and its message ----------------------------


@pytest.mark.parametrize("kind", list(SAMPLES), ids=_sample_ids(SAMPLES))
def test_the_api_answers_with_the_errors_status_name_and_message(kind):
    error = SAMPLES[kind]
    response = error_response(error)
    assert response.status_code == kind.http_status
    assert 400 <= kind.http_status < 600
    body = json.loads(response.body)
    assert body["error"] == kind.__name__
    assert body["message"] == error.format_message()


@pytest.mark.parametrize(
    ("kind", "client_error"),
    [
        (errors.InvalidTenantId, True),
        (errors.UnknownTenant, True),
        (errors.NotConnected, True),
        (errors.LockBusy, True),
        (errors.HeldElsewhere, True),
        (errors.ApiKeyRequired, True),
        (errors.BodyTooLarge, True),
        (errors.OperationTimeout, False),
        (errors.HolderNotAnswering, False),
        (errors.ManagerStopped, False),
        (errors.DatabaseUnavailable, False),
    ],
    ids=lambda value: getattr(value, "__name__", str(value)),
)
def test_a_callers_mistake_is_4xx_and_the_servers_trouble_5xx(kind, client_error):
    assert (kind.http_status < 500) is client_error


# --- the Python surface -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind",
    [kind for kind in SAMPLES if kind not in HTTP_ONLY],
    ids=lambda kind: kind.__name__,
)
def test_every_error_a_python_caller_can_catch_is_public(kind):
    assert kind.__name__ in wamgr.__all__
    assert getattr(wamgr, kind.__name__) is kind


def test_every_error_is_a_wamgr_error_and_value_errors_stay_value_errors():
    for kind in SAMPLES:
        assert issubclass(kind, WamgrError)
    for kind in (errors.InvalidTenantId, errors.InvalidPhone, errors.InvalidRecipient):
        assert issubclass(kind, ValueError)
    assert issubclass(errors.OperationTimeout, TimeoutError)
    assert issubclass(errors.HolderNotAnswering, errors.OperationTimeout)
    assert issubclass(errors.UnknownTenant, LookupError)
