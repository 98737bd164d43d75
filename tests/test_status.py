"""Validation of what users give wamgr: tenant ids and message recipients."""

from __future__ import annotations

import pytest

from wamgr.errors import InvalidPhone, InvalidRecipient, InvalidTenantId
from wamgr.status import (
    MAX_TEXT_CHARS,
    normalise_phone,
    validate_recipient,
    validate_tenant_id,
    validate_text,
)


@pytest.mark.parametrize("bad", [".", "..", "-x", "--help", "-"])
def test_tenant_ids_that_read_as_paths_or_options_are_refused(bad: str) -> None:
    with pytest.raises(InvalidTenantId, match="not start with '-'"):
        validate_tenant_id(bad)


@pytest.mark.parametrize("good", ["a.b", "...", "x-", "_-", ".hidden", "a..b"])
def test_dots_and_dashes_inside_an_id_are_fine(good: str) -> None:
    assert validate_tenant_id(good) == good


def test_a_huge_tenant_id_is_not_echoed_back_whole() -> None:
    with pytest.raises(InvalidTenantId) as raised:
        validate_tenant_id("x" * 100_000)

    message = raised.value.format_message()
    assert len(message) < 400, len(message)
    assert "100000 characters" in message
    assert raised.value.tenant_id == "x" * 100_000  # the program still gets it whole


@pytest.mark.parametrize(
    "good",
    [
        "15550001111",
        "+15550001111",
        "1234567",
        "123456789012345",
        "15550001111@s.whatsapp.net",
        "15550001111:12@s.whatsapp.net",
        "120363012345678901@g.us",
        "15550001111-1612345678@g.us",
        "123456789012345@lid",
        "120363012345678901@newsletter",
        "status@broadcast",
    ],
)
def test_phone_numbers_and_whatsapp_jids_are_recipients(good: str) -> None:
    assert validate_recipient(good) == good.removeprefix("+")


@pytest.mark.parametrize(
    "written", ["+1 555 000 1111", "1-555-000-1111", "+1 (555) 000-1111", "1.555.000.1111"]
)
def test_a_written_phone_number_gives_its_digits(written: str) -> None:
    assert validate_recipient(written) == "15550001111"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        " ",
        " 15550001111",
        "123456",  # 6 digits
        "1234567890123456",  # 16 digits
        "++15550001111",
        "15550001111 ",
        "1 2 3 4 5 6",  # 6 digits
        "1555-000-1111-2222-3",  # 16 digits
        "abc1234567",
        "15550001111@example.com",
        "@s.whatsapp.net",
        "a\x00b@s.whatsapp.net",
        "1555000\n1111",
        "\ud800",
        None,
        15550001111,
    ],
)
def test_anything_else_is_an_invalid_recipient_naming_the_field(bad: object) -> None:
    with pytest.raises(InvalidRecipient, match=r"\bto\b.*7 to 15 digits") as raised:
        validate_recipient(bad)

    assert raised.value.http_status == 422
    assert isinstance(raised.value, ValueError)  # callers catching ValueError still do


def test_a_huge_recipient_is_not_echoed_back_whole() -> None:
    with pytest.raises(InvalidRecipient) as raised:
        validate_recipient("1" * 100_000)

    assert len(raised.value.format_message()) < 400


def test_a_text_whatsapp_can_carry_is_returned_as_it_is() -> None:
    text = "line 1\r\nline 2\n\tindented " + "é" * 100

    assert validate_text(text) == text
    assert validate_text("x" * MAX_TEXT_CHARS)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("x" * (MAX_TEXT_CHARS + 1), "65537 characters"),
        ("a\x00b", r"control character '\\x00' at 1"),
        ("esc\x1b[0m", "control character"),
        ("half \ud800 a pair", "lone surrogate at 5"),
    ],
)
def test_a_text_whatsapp_cannot_carry_says_why(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        validate_text(text)


@pytest.mark.parametrize("phone", ["1555\n0001111", "1555\t0001111"])
def test_a_phone_number_with_a_control_character_is_invalid(phone: str) -> None:
    with pytest.raises(InvalidPhone):
        normalise_phone(phone)
