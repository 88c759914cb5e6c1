"""Resilience policy: which attempts to retry, how long to wait, and the limits around every call.

- `backoff_delay`: exponential backoff with full jitter (uniform between 0 and
  min(cap, base * 2**attempt)), so that many clients retrying together spread out.
- `retry_after_delay`: reads a Retry-After header (seconds or an HTTP date).
- `RateLimiter`: spaces the start of calls to at most N per second.
- `FailureBreaker`: counts consecutive failed attempts; past a threshold the SIS is down.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from datetime import UTC, datetime

RETRYABLE_STATUSES: frozenset[int] = frozenset({429, 500, 502, 503, 504})
"""Statuses that say "try again later" rather than "this request is wrong".

500 is among them: on real SIS (and in the provider's fault injection) it is most often a
passing failure, and only idempotent calls are retried, so repeating one cannot duplicate.
`ConnectionSettings.retry_statuses` narrows it for a SIS whose 500s are final."""

IDEMPOTENT_METHODS: frozenset[str] = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
"""Methods that may be repeated safely; POST is never retried (except the token request)."""


def backoff_delay(
    attempt: int, *, base_s: float, cap_s: float, rng: random.Random | None = None
) -> float:
    """Seconds to wait before retry number `attempt` (0 for the first retry): full jitter."""
    ceiling = min(cap_s, base_s * (2**attempt))
    return (rng or random).uniform(0.0, ceiling)


def retry_after_delay(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds asked for by a Retry-After header, or None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds)


class RateLimiter:
    """Lets calls start at most `per_second` times a second, evenly spaced (no bursts)."""

    def __init__(self, per_second: float) -> None:
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        self.interval = 1.0 / per_second
        self._next_slot = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self.interval
        delay = slot - now
        if delay > 0:
            await asyncio.sleep(delay)


class FailureBreaker:
    """Counts consecutive failed attempts across all calls of one client.

    A failure is an attempt that got no answer or a 5xx; any other answer (even a 4xx or a
    429, which prove the SIS is alive) resets the count. Once the count reaches `threshold`
    the breaker is open: `is_open` stays true for `cooldown_s`. Then it is half-open: the
    first caller to ask is let through (the probe) and every other caller still finds it
    open until the probe's result is recorded: a success closes the breaker, a failure opens
    it for another cooldown. A probe that never reports (its call was cancelled) frees the
    way for another probe after a cooldown.
    """

    def __init__(self, threshold: int, *, cooldown_s: float = 30.0) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.consecutive_failures = 0
        self._opened_at: float | None = None
        self._probe_sent_at: float | None = None

    @property
    def is_open(self) -> bool:
        """True when no attempt may be made now; False lets this caller's attempt go."""
        opened_at = self._opened_at
        if opened_at is None:
            return False
        now = time.monotonic()
        since = self._probe_sent_at if self._probe_sent_at is not None else opened_at
        if now - since < self.cooldown_s:
            return True
        self._probe_sent_at = now  # half-open: this caller is the one probe
        return False

    def record_success(self) -> None:
        self.consecutive_failures = 0
        if self._opened_at is not None:
            self._opened_at = None
            self._probe_sent_at = None

    def record_failure(self) -> bool:
        """Counts a failure; True when that opened the breaker (or reopened it, half-open)."""
        self.consecutive_failures += 1
        if self._probe_sent_at is not None:
            self._opened_at = time.monotonic()
            self._probe_sent_at = None
            return True
        if self.consecutive_failures >= self.threshold and self._opened_at is None:
            self._opened_at = time.monotonic()
            return True
        return False
