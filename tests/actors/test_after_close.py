"""The ranked "after close" of a tenant, and the close under way (pure, no actor)."""

from __future__ import annotations

import pytest

from wamgr.actors.after_close import AfterClose, PendingClose, after_close
from wamgr.transport.base import CloseReason

A = AfterClose


@pytest.mark.parametrize(
    ("pending", "requested", "stands"),
    [
        (A.REPORT, A.REOPEN, A.REOPEN),
        (A.REOPEN, A.STOP, A.STOP),  # a remove after a reconnect stops
        (A.STOP, A.REOPEN, A.REOPEN),  # a connect after a remove reopens
        (A.SHUTDOWN, A.REOPEN, A.SHUTDOWN),  # never undone by a connect
        (A.SHUTDOWN, A.STOP, A.SHUTDOWN),
        (A.SHUTDOWN, A.CLEAR_AUTH, A.CLEAR_AUTH),
        (A.CLEAR_AUTH, A.SHUTDOWN, A.CLEAR_AUTH),  # cleared credentials stay cleared
        (A.CLEAR_AUTH, A.REOPEN, A.CLEAR_AUTH),
    ],
)
def test_the_request_that_stands(pending, requested, stands):
    assert after_close(pending, requested) is stands


def test_a_close_nobody_asked_for_is_a_failure():
    close = PendingClose()
    result = close.end(CloseReason.NETWORK, fenced=False)
    assert (result.failure, result.logout) == (CloseReason.NETWORK, False)


def test_a_fenced_close_is_lease_lost_even_if_a_reopen_was_asked():
    close = PendingClose()
    close.want(A.REOPEN)
    assert close.begin(do_logout=False)
    assert close.end(CloseReason.REQUESTED, fenced=True).failure is CloseReason.LEASE_LOST


def test_a_stop_wins_over_the_failure_the_link_was_closed_for():
    close = PendingClose()
    assert close.begin(do_logout=False, cause=CloseReason.CORRUPTED_KEYS)
    close.want(A.STOP)
    result = close.end(CloseReason.REQUESTED, fenced=True)
    assert (result.after, result.failure) == (A.STOP, None)


def test_the_detail_of_a_failure_the_tenant_closed_for_reaches_the_result():
    close = PendingClose()
    assert close.begin(False, CloseReason.DEVICE_IN_USE, "device x is tenant a's")
    assert not close.begin(do_logout=True)  # a logout asked meanwhile keeps the detail
    result = close.end(CloseReason.REQUESTED, fenced=False)
    assert (result.failure, result.detail) == (CloseReason.DEVICE_IN_USE, "device x is tenant a's")
    assert result.logout


def test_a_fenced_close_drops_the_detail_of_the_failure_it_was_closed_for():
    close = PendingClose()
    assert close.begin(False, CloseReason.DEVICE_IN_USE, "device x is tenant a's")
    result = close.end(CloseReason.REQUESTED, fenced=True)
    assert (result.failure, result.detail) == (CloseReason.LEASE_LOST, "")


def test_a_logout_asked_while_closing_is_remembered_and_the_link_told_once():
    close = PendingClose()
    assert close.begin(do_logout=False)
    assert not close.begin(do_logout=True)
    close.want(A.STOP)
    assert close.end(CloseReason.REQUESTED, fenced=False).logout
    assert not close.under_way


def test_a_requested_close_reopens_or_stops_and_resets():
    close = PendingClose()
    close.want(A.REOPEN)
    close.begin(do_logout=False)
    assert close.end(CloseReason.REQUESTED, fenced=False).after is A.REOPEN
    close.begin(do_logout=False)  # asked to close with nothing to follow
    assert close.end(CloseReason.REQUESTED, fenced=False).after is A.STOP
