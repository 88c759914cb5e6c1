"""Backoff with full jitter, Retry-After, the failure breaker and the rate limiter's schedule."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from sislink.oneroster.consumer.retry import (
    IDEMPOTENT_METHODS,
    RETRYABLE_STATUSES,
    FailureBreaker,
    RateLimiter,
    backoff_delay,
    retry_after_delay,
)


def test_backoff_is_full_jitter_below_an_exponential_ceiling() -> None:
    rng = random.Random(3)
    for attempt in range(8):
        ceiling = min(5.0, 0.1 * 2**attempt)
        delays = [backoff_delay(attempt, base_s=0.1, cap_s=5.0, rng=rng) for _ in range(300)]
        assert all(0.0 <= d <= ceiling for d in delays)
        # Full jitter spreads over the whole range, not only near the ceiling.
        assert min(delays) < ceiling * 0.1
        assert max(delays) > ceiling * 0.9


def test_backoff_never_exceeds_its_cap() -> None:
    rng = random.Random(1)
    assert max(backoff_delay(30, base_s=0.5, cap_s=2.0, rng=rng) for _ in range(500)) <= 2.0


def test_retry_after_in_seconds_and_as_a_date_are_both_read() -> None:
    assert retry_after_delay("3") == 3.0
    assert retry_after_delay(" 0.5 ") == 0.5
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=7), usegmt=True)
    assert retry_after_delay(later, now=now) == pytest.approx(7.0)


def test_retry_after_in_the_past_or_unreadable_asks_no_wait() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    earlier = format_datetime(now - timedelta(seconds=30), usegmt=True)
    assert retry_after_delay(earlier, now=now) == 0.0
    assert retry_after_delay("soon") is None
    assert retry_after_delay(None) is None
    assert retry_after_delay("") is None


def test_only_idempotent_methods_and_transient_statuses_are_retried() -> None:
    assert {"GET", "PUT", "DELETE"} <= IDEMPOTENT_METHODS
    assert "POST" not in IDEMPOTENT_METHODS
    assert {429, 500, 502, 503, 504} == RETRYABLE_STATUSES


def test_breaker_opens_after_threshold_consecutive_failures() -> None:
    breaker = FailureBreaker(3)
    assert not breaker.record_failure()
    assert not breaker.record_failure()
    assert breaker.record_failure()
    assert breaker.is_open


def test_breaker_count_is_reset_by_any_success() -> None:
    breaker = FailureBreaker(3)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    assert not breaker.record_failure()
    assert not breaker.is_open


def test_breaker_lets_one_attempt_through_after_its_cooldown() -> None:
    breaker = FailureBreaker(2, cooldown_s=0.0)
    breaker.record_failure()
    breaker.record_failure()
    assert not breaker.is_open  # cooled down at once: half-open
    assert breaker.record_failure()  # one more failure opens it again


def _opened(cooldown_s: float) -> FailureBreaker:
    breaker = FailureBreaker(2, cooldown_s=cooldown_s)
    breaker.record_failure()
    assert breaker.record_failure()
    return breaker


def test_half_open_admits_exactly_one_probe_until_it_reports() -> None:
    breaker = _opened(0.05)
    assert breaker.is_open
    time.sleep(0.06)
    # Many callers ask at once: the first is the probe, everyone else still finds it open.
    assert [breaker.is_open for _ in range(10)] == [False] + [True] * 9
    breaker.record_success()
    assert [breaker.is_open for _ in range(3)] == [False] * 3
    assert breaker.consecutive_failures == 0


def test_a_failed_probe_opens_the_breaker_for_another_cooldown() -> None:
    breaker = _opened(0.05)
    time.sleep(0.06)
    assert not breaker.is_open
    assert breaker.is_open  # the probe is out
    assert breaker.record_failure()  # it failed: open again, not half-open
    assert breaker.is_open
    time.sleep(0.06)
    assert [breaker.is_open for _ in range(3)] == [False, True, True]


def test_a_probe_that_never_reports_frees_the_way_after_a_cooldown() -> None:
    breaker = _opened(0.05)
    time.sleep(0.06)
    assert not breaker.is_open  # the probe's call is then cancelled: it never reports
    assert breaker.is_open
    time.sleep(0.06)
    assert [breaker.is_open for _ in range(3)] == [False, True, True]


@pytest.mark.anyio
async def test_rate_limiter_spaces_call_starts_evenly() -> None:
    limiter = RateLimiter(1000.0)
    await limiter.wait()
    first = limiter._next_slot
    for _ in range(9):
        await limiter.wait()
    # Each start is at least one interval after the one before (a late start is not made up
    # for with a burst).
    assert limiter._next_slot - first >= 9 * 0.001 - 1e-9
