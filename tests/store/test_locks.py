"""Processing locks against PostgreSQL: one holder per key, fencing tokens, takeover after TTL."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from wamgr.errors import InvalidDuration, InvalidLockKey, LockBusy
from wamgr.store.db import Database
from wamgr.store.locks import ProcessingLocks

#: Seconds a short claim lives in the takeover tests (the database clock must pass it).
SHORT_TTL_S = 0.2


@pytest.fixture
def locks(db):
    return ProcessingLocks(db, owner="test")


def _rows(db: Database) -> int:
    with db.connection() as conn:
        return conn.execute("SELECT count(*) FROM wamgr_processing_locks").fetchone()[0]


@pytest.mark.slow
def test_32_threads_on_10_keys_never_have_two_holders_of_a_key(locks, db):
    keys = [f"shop-1:1555000{i:04d}" for i in range(10)]
    quotas = [32] * 8 + [31] * 24  # 1,000 claims in all
    holders: Counter[str] = Counter()
    most_holders: Counter[str] = Counter()
    counting = threading.Lock()
    tokens: list[int] = []
    refused = Counter[str]()
    lost: list[int] = []  # tokens whose release found the lock no longer theirs
    failures: list[BaseException] = []
    barrier = threading.Barrier(len(quotas))

    def work(index: int, quota: int) -> None:
        try:
            barrier.wait(10)
            attempt = index
            done = 0
            while done < quota:
                key = keys[attempt % len(keys)]
                attempt += 1
                claim = locks.claim(key, ttl=30)
                if claim is None:
                    with counting:
                        refused[key] += 1
                    continue
                with counting:
                    holders[key] += 1
                    most_holders[key] = max(most_holders[key], holders[key])
                time.sleep(0.0002)  # stay inside the critical section a moment
                with counting:
                    holders[key] -= 1
                    tokens.append(claim.token)
                if not claim.release():
                    lost.append(claim.token)
                done += 1
        except BaseException as exc:
            failures.append(exc)

    threads = [
        threading.Thread(target=work, args=(i, quota), name=f"contender-{i}")
        for i, quota in enumerate(quotas)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert not failures, failures
    assert not any(thread.is_alive() for thread in threads)
    assert max(most_holders.values()) == 1, f"two holders of a key at once: {most_holders}"
    assert lost == []
    assert len(tokens) == 1000
    assert len(set(tokens)) == 1000  # every claim got a token of its own
    assert set(most_holders) == set(keys)
    assert sum(refused.values()) > 0  # the keys really were contended
    assert _rows(db) == 0


def test_a_crashed_holder_is_taken_over_after_its_ttl_and_its_late_release_does_nothing(locks):
    crashed = locks.claim("t1:p1", ttl=SHORT_TTL_S)  # its holder never releases it
    assert crashed is not None
    assert locks.claim("t1:p1", ttl=30) is None

    started = time.monotonic()
    with locks.hold("t1:p1", ttl=30, wait=5) as successor:
        waited = time.monotonic() - started
        assert successor.token > crashed.token
        assert waited < 5

        assert not crashed.release()  # the late release
        assert not crashed.extend(30)
        assert locks.holder("t1:p1").token == successor.token
        assert locks.claim("t1:p1") is None

    assert locks.holder("t1:p1") is None


def test_a_free_or_released_key_is_claimed_at_once_with_growing_tokens(locks):
    first = locks.claim("a", ttl=30)
    assert first is not None and first.key == "a"
    assert locks.claim("a") is None
    assert first.release()
    assert not first.release()  # twice: the second does nothing
    second = locks.claim("a")
    other = locks.claim("b")
    assert first.token < second.token < other.token


@pytest.mark.slow
def test_extend_renews_only_while_the_claim_is_ours(locks):
    claim = locks.claim("k", ttl=SHORT_TTL_S)
    before = claim.expires_at

    assert claim.extend(30)
    assert claim.expires_at > before
    assert locks.holder("k").expires_at == claim.expires_at
    threading.Event().wait(SHORT_TTL_S + 0.1)
    assert locks.claim("k") is None  # the extension kept it

    assert claim.release()
    assert not claim.extend(30)
    assert locks.holder("k") is None


@pytest.mark.slow
def test_an_expired_claim_is_lost_even_before_anyone_takes_it(locks):
    claim = locks.claim("k", ttl=SHORT_TTL_S)
    threading.Event().wait(SHORT_TTL_S + 0.1)

    assert not claim.extend(30)
    assert not claim.release()  # it overran its ttl: not ours any more, but the row is gone
    assert locks.holder("k") is None


def test_hold_waits_for_a_release(locks):
    first = locks.claim("k", ttl=30)
    releaser = threading.Timer(0.15, first.release)
    releaser.start()
    try:
        with locks.hold("k", ttl=30, wait=5) as claim:
            assert claim.token > first.token
    finally:
        releaser.join(5)
    assert locks.holder("k") is None


@pytest.mark.slow
def test_hold_raises_lock_busy_naming_the_key_the_wait_and_the_expiry(locks):
    held = locks.claim("shop-1:15550001111", ttl=30)

    started = time.monotonic()
    with pytest.raises(LockBusy) as caught, locks.hold("shop-1:15550001111", ttl=30, wait=0.3):
        pytest.fail("entered a lock someone else holds")
    waited = time.monotonic() - started

    assert 0.3 <= waited < 1.5
    error = caught.value
    assert error.http_status == 409
    assert error.expires_at == held.expires_at
    message = error.format_message()
    assert "'shop-1:15550001111'" in message
    assert "0.3 s" in message
    assert "expires at " in message and "owner test" in message
    assert locks.holder("shop-1:15550001111").token == held.token


def test_hold_with_no_wait_tries_once(locks):
    locks.claim("k", ttl=30)
    started = time.monotonic()
    with pytest.raises(LockBusy), locks.hold("k", wait=0):
        pass
    assert time.monotonic() - started < 0.5


def test_hold_releases_when_the_block_raises(locks):
    with pytest.raises(RuntimeError, match="boom"), locks.hold("k", ttl=30, wait=0):
        assert locks.holder("k") is not None
        raise RuntimeError("boom")
    assert locks.holder("k") is None


@pytest.mark.slow
def test_sweep_deletes_only_expired_locks(locks, db):
    locks.claim("short", ttl=SHORT_TTL_S)
    live = locks.claim("long", ttl=30)
    threading.Event().wait(SHORT_TTL_S + 0.1)

    assert [row.key for row in locks.all() if row.expired] == ["short"]
    assert locks.sweep() == 1
    assert [row.key for row in locks.all()] == ["long"]
    assert locks.sweep() == 0
    assert live.release()


def test_clear_removes_a_live_lock_and_fences_its_holder(locks):
    claim = locks.claim("k", ttl=30)

    gone = locks.clear("k")

    assert gone.token == claim.token and not gone.expired and gone.owner == "test"
    assert locks.clear("k") is None
    assert not claim.extend(30)
    assert not claim.release()
    assert locks.claim("k") is not None


def test_any_text_of_1_to_255_characters_is_a_key(locks):
    for key in ["x", "x" * 255, "shop 1: ünïcode 🙂", "a\nb", " "]:
        claim = locks.claim(key, ttl=30)
        assert claim is not None and locks.holder(key).token == claim.token, key
        assert claim.release()


_BAD_KEYS = [
    ("", "it is empty"),
    ("x" * 256, "it has 256 characters"),
    ("a\x00b", "NUL"),
    (None, "not a str"),
    (7, "it is a int"),
    (b"bytes", "it is a bytes"),
]


def test_invalid_keys_are_refused_saying_what_is_allowed(locks):
    for key, why in _BAD_KEYS:
        for call in (
            lambda key=key: locks.claim(key),
            lambda key=key: locks.hold(key).__enter__(),
            lambda key=key: locks.clear(key),
            lambda key=key: locks.holder(key),
        ):
            with pytest.raises(InvalidLockKey, match="use 1 to 255 characters") as caught:
                call()
            assert why in caught.value.format_message()
            assert caught.value.http_status == 422
            assert caught.value.exit_code == 2
    assert locks.all() == []


_BAD_SECONDS = [0, -1, float("nan"), float("inf"), 86_401, "30", True, None]


def test_invalid_ttls_are_refused(locks):
    claim = locks.claim("held", ttl=30)
    for ttl in _BAD_SECONDS:
        with pytest.raises(InvalidDuration, match="ttl must be a number of seconds from more"):
            locks.claim("k", ttl=ttl)
        with pytest.raises(InvalidDuration, match="ttl must be"):
            locks.hold("k", ttl=ttl).__enter__()
        with pytest.raises(InvalidDuration, match="ttl must be"):
            claim.extend(ttl)
    assert [row.key for row in locks.all()] == ["held"]


def test_invalid_waits_are_refused(locks):
    for wait in [-0.1, float("nan"), float("inf"), "5", None]:
        with pytest.raises(InvalidDuration, match=r"wait must be a number of seconds from 0 "):
            locks.hold("k", wait=wait).__enter__()
    assert locks.all() == []
