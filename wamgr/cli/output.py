"""How commands print: one table printer, JSON, and the formats of times, keys and tenants.

Tables are for people (aligned columns, the state coloured on a terminal); ``--json`` output
is for programs, indented, with times in ISO 8601.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import click

from wamgr.status import TenantState
from wamgr.store.tenants import TenantRecord

#: Colour of each state in the STATE column (on a terminal; plain text otherwise).
STATE_COLOURS: Mapping[str, str] = {
    TenantState.CONNECTED: "green",
    TenantState.CONNECTING: "cyan",
    TenantState.PAIRING: "cyan",
    TenantState.BACKOFF: "yellow",
    TenantState.STANDBY: "blue",
    TenantState.BANNED: "magenta",
    TenantState.CONFLICT: "red",
    TenantState.LOGGED_OUT: "red",
    TenantState.FAILED: "red",
}

#: The columns of the tenant table (``wamgr status``).
TENANT_HEADER = (
    "TENANT",
    "DESIRED",
    "STATE",
    "OWNER",
    "LEASE UNTIL",
    "ATTEMPT",
    "NEXT RETRY",
    "LAST ERROR",
)


def print_table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    colours: Mapping[int, Mapping[str, str]] | None = None,
) -> None:
    """Print ``header`` and ``rows`` in columns two spaces apart.

    Every column but the last is padded to its widest cell, so a long last cell (an error, a
    URL) never widens the table. ``colours`` maps a column's index to the colour of each
    text in it (rows only; a text it does not name stays plain).
    """
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    click.echo(_line(header, widths, {}))
    for row in rows:
        styles = {
            column: colour
            for column, by_text in (colours or {}).items()
            if (colour := by_text.get(row[column])) is not None
        }
        click.echo(_line(row, widths, styles))


def _line(cells: Sequence[str], widths: list[int], styles: Mapping[int, str]) -> str:
    parts = [cell.ljust(width) for cell, width in zip(cells, widths, strict=False)]
    parts.append(cells[-1])
    for column, colour in styles.items():
        parts[column] = click.style(parts[column], fg=colour)
    return "  ".join(parts)


def print_json(payload: Any) -> None:
    """Print ``payload`` as indented JSON."""
    click.echo(json.dumps(payload, indent=2))


def tenant_json(record: TenantRecord) -> dict[str, Any]:
    """A tenant as ``--json`` shows it: its status, what is wanted of it, its lease expiry."""
    lease = record.lease_expires_at
    return {
        **record.status.to_json(),
        "desired": str(record.desired),
        "lease_expires_at": lease.isoformat() if lease else None,
    }


def print_tenants(records: Sequence[TenantRecord]) -> None:
    """The tenant table, its state coloured; a hint how to add a tenant when there is none."""
    if not records:
        click.echo("no tenants (add one: wamgr tenants add TENANT)")
        return
    rows = []
    for record in records:
        s = record.status
        rows.append(
            (
                s.tenant_id,
                str(record.desired),
                str(s.state),
                s.owner or "-",
                clock_time(record.lease_expires_at),
                str(s.attempt),
                clock_time(s.next_retry_at),
                s.last_error or "-",
            )
        )
    print_table(TENANT_HEADER, rows, colours={TENANT_HEADER.index("STATE"): STATE_COLOURS})


def clock_time(moment: datetime | None) -> str:
    """``HH:MM:SS`` of ``moment`` in its own time zone, or ``-``."""
    return moment.strftime("%H:%M:%S") if moment else "-"


def utc(moment: datetime) -> str:
    """``moment`` in UTC to the millisecond, e.g. ``2025-01-31 12:00:00.250``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def shown_key(key: str) -> str:
    """A key as printed: as is when printable, else its repr (so it fits on one line)."""
    return key if key.isprintable() else repr(key)
