"""The tenant's corrections of a link's close reason, every case."""

from __future__ import annotations

import pytest

from wamgr.actors.close_cause import reported_cause
from wamgr.actors.tenant_lease import Replacement
from wamgr.transport.base import CloseReason


def _never() -> Replacement:
    raise AssertionError("only a 440 asks who replaced the socket")


def test_a_link_that_closed_itself_without_a_reason_dropped():
    assert reported_cause(CloseReason.REQUESTED, "eof", _never) == (CloseReason.NETWORK, "eof")


@pytest.mark.parametrize(
    ("verdict", "expected"),
    [
        (Replacement.SUCCESSOR, (CloseReason.LEASE_LOST, "440")),
        (
            Replacement.PREDECESSOR,
            (CloseReason.NETWORK, "440, by the previous holder's late socket"),
        ),
        (Replacement.ROGUE, (CloseReason.REPLACED, "440")),
    ],
)
def test_a_440_is_judged_by_who_holds_the_lease(verdict, expected):
    assert reported_cause(CloseReason.REPLACED, "440", lambda: verdict) == expected


@pytest.mark.parametrize(
    "reason",
    [r for r in CloseReason if r not in (CloseReason.REQUESTED, CloseReason.REPLACED)],
)
def test_every_other_reason_is_reported_as_the_link_said(reason):
    assert reported_cause(reason, "detail", _never) == (reason, "detail")
