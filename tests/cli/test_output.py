"""The one table printer of the CLI: aligned columns, a last column never padded, colours by
cell text only where asked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import click
from click.testing import CliRunner

from wamgr.cli.output import print_table, shown_key

HEADER = ("NAME", "STATE", "NOTE")
ROWS = [("a", "connected", "fine"), ("long-name", "failed", "a long note")]


def _printed(
    rows: Sequence[Sequence[str]],
    colours: Mapping[int, Mapping[str, str]] | None = None,
    color: bool = False,
) -> list[str]:
    @click.command()
    def table() -> None:
        print_table(HEADER, rows, colours=colours)

    result = CliRunner().invoke(table, color=color)
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_columns_line_up_and_the_last_is_not_padded() -> None:
    assert _printed(ROWS) == [
        "NAME       STATE      NOTE",
        "a          connected  fine",
        "long-name  failed     a long note",
    ]


def test_a_table_without_rows_is_its_header() -> None:
    assert _printed([]) == ["NAME  STATE  NOTE"]


def test_colours_apply_to_the_named_texts_of_a_column_only() -> None:
    lines = _printed(ROWS, colours={1: {"failed": "red"}}, color=True)

    assert lines[1] == "a          connected  fine"
    assert lines[2] == f"long-name  {click.style('failed   ', fg='red')}  a long note"
    assert _printed(ROWS, colours={1: {"failed": "red"}}) == _printed(ROWS)  # not a terminal


def test_an_unprintable_key_is_shown_on_one_line() -> None:
    assert shown_key("shop-1:1555") == "shop-1:1555"
    assert shown_key("a\nb") == "'a\\nb'"
