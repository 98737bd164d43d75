"""The pure policy: backoff schedule, attempt counting, and every row of the close-reason table."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wamgr.policy import (
    DEFAULT_BAN_S,
    backoff_delay,
    close_reasons_table,
    decide,
    jittered,
    next_attempt,
)
from wamgr.status import TenantState
from wamgr.transport.base import CloseReason

EXPECTED_BACKOFF = {1: 3.0} | dict.fromkeys(range(2, 6), 5.0) | dict.fromkeys(range(6, 16), 10.0)


@pytest.mark.parametrize("attempt", range(1, 41))
def test_backoff_schedule_for_attempts_1_to_40(attempt):
    assert backoff_delay(attempt) == EXPECTED_BACKOFF.get(attempt, 30.0)


@pytest.mark.parametrize("attempt", [0, -1])
def test_backoff_refuses_attempts_below_one(attempt):
    with pytest.raises(ValueError, match="counts from 1"):
        backoff_delay(attempt)


@given(st.integers(min_value=1, max_value=10_000))
def test_backoff_never_shrinks_and_is_capped(attempt):
    assert backoff_delay(attempt) <= backoff_delay(attempt + 1) <= 30.0


def test_drop_after_a_stable_link_starts_again_at_one():
    assert next_attempt(7, uptime_s=60.0, stable_after_s=60.0) == 1
    assert next_attempt(7, uptime_s=3600.0, stable_after_s=60.0) == 1


def test_drop_of_a_flapping_link_keeps_escalating():
    assert next_attempt(7, uptime_s=59.9, stable_after_s=60.0) == 8
    assert next_attempt(0, uptime_s=0.0, stable_after_s=60.0) == 1


TRANSIENT = [
    CloseReason.NETWORK,
    CloseReason.DIAL_FAILED,
    CloseReason.KEEPALIVE_TIMEOUT,
    CloseReason.STREAM_ERROR,
    CloseReason.SERVER_ERROR,
]


@pytest.mark.parametrize("reason", TRANSIENT)
def test_transient_failures_back_off_and_keep_auth_and_lease(reason):
    d = decide(reason, attempt=0, uptime_s=0.0)
    assert (d.state, d.reconnect_after_s, d.attempt) == (TenantState.BACKOFF, 3.0, 1)
    assert not d.clear_auth and not d.release_lease
    d = decide(reason, attempt=5, uptime_s=10.0)
    assert (d.reconnect_after_s, d.attempt) == (10.0, 6)


def test_replaced_is_conflict_without_reconnect_and_releases_the_lease():
    d = decide(CloseReason.REPLACED, attempt=2, uptime_s=100.0, detail="440")
    assert d.state is TenantState.CONFLICT
    assert d.reconnect_after_s is None
    assert not d.clear_auth and d.release_lease
    assert "440" in d.error and "replaced" in d.error


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        (CloseReason.LOGGED_OUT, "401"),
        (CloseReason.MAIN_DEVICE_GONE, "403"),
        (CloseReason.UNKNOWN_LOGOUT, "406"),
    ],
)
def test_logouts_clear_auth_and_release_the_lease(reason, code):
    d = decide(reason, attempt=0, uptime_s=0.0)
    assert d.state is TenantState.LOGGED_OUT
    assert d.reconnect_after_s is None
    assert d.clear_auth and d.release_lease
    assert code in d.error and "pair again" in d.error


def test_temporary_ban_waits_for_its_expiry_and_keeps_everything():
    d = decide(CloseReason.TEMPORARY_BAN, attempt=3, uptime_s=0.0, ban_expires_in_s=7200.0)
    assert (d.state, d.reconnect_after_s, d.attempt) == (TenantState.BANNED, 7200.0, 3)
    assert not d.clear_auth and not d.release_lease


def test_temporary_ban_without_expiry_waits_the_default():
    d = decide(CloseReason.TEMPORARY_BAN, attempt=0, uptime_s=0.0)
    assert d.reconnect_after_s == DEFAULT_BAN_S


@pytest.mark.parametrize(
    ("reason", "says"),
    [
        (CloseReason.CLIENT_OUTDATED, "405"),
        (CloseReason.BAD_USER_AGENT, "409"),
        (CloseReason.CONNECT_FAILURE, "refused"),
        (CloseReason.CORRUPTED_KEYS, "wamgr clear-auth"),
        (CloseReason.DEVICE_IN_USE, "another tenant"),
    ],
)
def test_operator_failures_stop_in_failed_keep_auth_and_release(reason, says):
    d = decide(reason, attempt=1, uptime_s=0.0)
    assert d.state is TenantState.FAILED
    assert d.reconnect_after_s is None
    assert not d.clear_auth and d.release_lease
    assert says in d.error


def test_corrupted_keys_with_clear_auth_on_corruption_re_pairs_at_once():
    d = decide(CloseReason.CORRUPTED_KEYS, attempt=4, uptime_s=0.0, clear_auth_on_corruption=True)
    assert d.clear_auth and not d.release_lease
    assert d.reconnect_after_s == 0.0 and d.attempt == 0


def test_lease_lost_is_standby_without_own_reconnect():
    d = decide(CloseReason.LEASE_LOST, attempt=0, uptime_s=5.0)
    assert d.state is TenantState.STANDBY
    assert d.reconnect_after_s is None
    assert not d.clear_auth and not d.release_lease


def test_a_requested_close_is_not_a_failure():
    with pytest.raises(ValueError, match="not a failure"):
        decide(CloseReason.REQUESTED, attempt=0, uptime_s=0.0)


def test_the_table_covers_every_failure_reason():
    reasons = {row[0] for row in close_reasons_table()}
    assert reasons == set(CloseReason) - {CloseReason.REQUESTED}


@given(
    reason=st.sampled_from(sorted(set(CloseReason) - {CloseReason.REQUESTED})),
    attempt=st.integers(min_value=0, max_value=100),
    uptime=st.floats(min_value=0, max_value=1e6, allow_nan=False),
)
def test_every_decision_is_consistent(reason, attempt, uptime):
    d = decide(reason, attempt=attempt, uptime_s=uptime)
    if d.state is TenantState.BACKOFF:
        assert d.reconnect_after_s == backoff_delay(d.attempt)
        assert d.attempt == (1 if uptime >= 60.0 else attempt + 1)
    if d.clear_auth:
        assert d.state is TenantState.LOGGED_OUT
    if d.state in (TenantState.CONFLICT, TenantState.LOGGED_OUT, TenantState.FAILED):
        assert d.reconnect_after_s is None and d.release_lease


@given(
    delay=st.floats(min_value=0.1, max_value=60),
    jitter=st.floats(min_value=0, max_value=0.99),
    r=st.floats(min_value=0, max_value=0.999999),
)
def test_jitter_stays_within_its_fraction(delay, jitter, r):
    assert delay * (1 - jitter) - 1e-9 <= jittered(delay, jitter, r) <= delay * (1 + jitter) + 1e-9


def test_jitter_refuses_a_fraction_of_one_or_more():
    with pytest.raises(ValueError, match="fraction"):
        jittered(3.0, 1.0, 0.5)
