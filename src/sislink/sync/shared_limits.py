"""One SIS connection's limits shared by every process that calls it, kept in Redis.

Celery workers on many machines each open their own OneRoster client; alone, each would allow
itself the connection's whole `max_concurrency` and `requests_per_second`, so ten workers would
send the SIS ten times its allowance. `RedisGate` (the consumer's `CallGate`) holds the counts
in Redis instead, atomically (Lua scripts, in Redis's own clock):

- in flight: a sorted set of the calls under way, each with the time its place lapses: a few
  seconds ahead, renewed every second while the call is under way, so that the places of a
  worker killed mid-call are free again within PLACE_LEASE_S (the set itself lives a minute
  past its last turn or renewal, so that long calls never lose their places with it);
- rate: the time the next call may start (in microseconds), one `1 / requests_per_second`
  after the last;
- pause: until when nobody starts a call, set by a 429's Retry-After (the longest asked wins).

Keys are `{SISLINK_REDIS_PREFIX}:sis:{connection id}:...`. Redis is SISLINK_REDIS_URL, else
SISLINK_BROKER_URL when that is Redis; without either the limits are each process's own. The
connection's allowance is SISLINK_SIS_MAX_CONCURRENCY and SISLINK_SIS_REQUESTS_PER_SECOND (else
the partner profile's), the same figures one process alone keeps to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from typing import Any, TypeVar

from sislink.oneroster.consumer import ConnectionSettings
from sislink.operations.logs import url_in_words
from sislink.sync.errors import InvalidConnectionDetails, SyncError

T = TypeVar("T")

REDIS_VARIABLE = "SISLINK_REDIS_URL"
PREFIX_VARIABLE = "SISLINK_REDIS_PREFIX"
DEFAULT_PREFIX = "sislink"
CONCURRENCY_VARIABLE = "SISLINK_SIS_MAX_CONCURRENCY"
RATE_VARIABLE = "SISLINK_SIS_REQUESTS_PER_SECOND"
# How long a full gate is polled again (seconds): a place frees when a call ends.
FULL_POLL_S = 0.01
# A place not renewed for this long lapses (its worker was killed mid-call); renewed this often.
PLACE_LEASE_S = 5.0
PLACE_RENEW_S = 1.0
# How long Redis has to take a connection, and to answer each command (seconds). Without it a
# Redis that stopped answering (paused, or packets dropped on the way) held every SIS call's
# turn for ever: the job never ended, nor saw its cancel.
REDIS_TIMEOUT_S = 10.0

logger = logging.getLogger("sislink.sync.shared_limits")


class SharedLimitsUnavailable(SyncError):
    """Redis, where the SIS connection's limits are kept across workers, did not answer: no
    call to the SIS was started (it would not know whether it kept to the allowance)."""


_TURN = """
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now = math.floor(now_us / 1000)
local pause = tonumber(redis.call('GET', KEYS[3]) or '0')
if pause > now then return pause - now end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return -1 end
local interval_us = tonumber(ARGV[3])
if interval_us > 0 then
  local next_slot_us = tonumber(redis.call('GET', KEYS[2]) or '0')
  if next_slot_us > now_us then return math.ceil((next_slot_us - now_us) / 1000) end
  redis.call('SET', KEYS[2], string.format('%.0f', now_us + interval_us), 'PX',
    math.ceil(interval_us / 1000) + 60000)
end
local hold = tonumber(ARGV[4])
redis.call('ZADD', KEYS[1], now + hold, ARGV[1])
redis.call('PEXPIRE', KEYS[1], hold + 60000)
return 0
"""

_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ms > current then
  redis.call('SET', KEYS[1], until_ms, 'PX', tonumber(ARGV[1]) + 1000)
end
return until_ms
"""


_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) + 60000)
return #ARGV - 1
"""


def redis_url(environ: Mapping[str, str] | None = None) -> str | None:
    """Where the shared limits live: SISLINK_REDIS_URL, else a Redis SISLINK_BROKER_URL."""
    env = os.environ if environ is None else environ
    url = env.get(REDIS_VARIABLE, "").strip()
    if url:
        return url
    broker = env.get("SISLINK_BROKER_URL", "").strip()
    return broker if broker.startswith(("redis://", "rediss://")) else None


def key_prefix(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return env.get(PREFIX_VARIABLE, "").strip() or DEFAULT_PREFIX


def with_configured_limits(
    settings: ConnectionSettings, environ: Mapping[str, str] | None = None
) -> ConnectionSettings:
    """The settings with the connection's allowance from the environment, when given."""
    env = os.environ if environ is None else environ
    changes: dict[str, Any] = {}
    raw = env.get(CONCURRENCY_VARIABLE, "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise InvalidConnectionDetails(
                f"{CONCURRENCY_VARIABLE} is {raw!r}: give how many calls may be in flight to "
                "the SIS at once, across all workers (a whole number, 1 or more)."
            )
        changes["max_concurrency"] = int(raw)
    raw = env.get(RATE_VARIABLE, "").strip()
    if raw:
        try:
            rate = float(raw)
        except ValueError:
            rate = 0.0
        if not rate > 0:
            raise InvalidConnectionDetails(
                f"{RATE_VARIABLE} is {raw!r}: give how many calls a second the SIS allows, "
                "across all workers (a number above 0), or unset it for no limit."
            )
        changes["requests_per_second"] = rate
    return replace(settings, **changes) if changes else settings


class RedisGate:
    """The consumer's CallGate for one SIS connection, its counts in Redis (see the module)."""

    def __init__(
        self,
        url: str,
        *,
        name: str,
        max_concurrency: int,
        requests_per_second: float | None,
        hold_s: float = PLACE_LEASE_S,
    ) -> None:
        from redis.asyncio import Redis

        self._where = url_in_words(url)
        self._redis: Any = Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
        )
        self._keys = [f"{name}:in_flight", f"{name}:next_slot", f"{name}:pause_until"]
        self._limit = max_concurrency
        # In microseconds: in whole milliseconds, 300 a second became one every 3 ms (333).
        self._interval_us = round(1_000_000 / requests_per_second) if requests_per_second else 0
        self._hold_ms = round(hold_s * 1000)
        self._turn = self._redis.register_script(_TURN)
        self._pause = self._redis.register_script(_PAUSE)
        self._renew_places = self._redis.register_script(_RENEW)
        self._places: set[str] = set()
        self._renewer: asyncio.Task[None] | None = None
        self._closed = False
        # One caller of this process asks Redis for a turn at a time, the others queue here
        # (in order): without it, every call waiting for the next rate slot asked Redis again
        # each time it woke, ~13 Redis round trips per SIS call at 16 calls in flight, which
        # on a small machine took CPU from the workers, Redis and the SIS alike.
        self._asking = asyncio.Lock()

    def turn(self) -> AbstractAsyncContextManager[None]:
        return self._held()

    @asynccontextmanager
    async def _held(self) -> AsyncIterator[None]:
        from redis.exceptions import RedisError

        place = uuid.uuid4().hex
        async with self._asking:
            while True:
                try:
                    answer = int(
                        await _keeping_a_cancel(
                            self._turn(
                                keys=self._keys,
                                args=[place, self._limit, self._interval_us, self._hold_ms],
                            )
                        )
                    )
                except RedisError as away:
                    raise self._unavailable(away) from None
                if answer == 0:
                    break
                await asyncio.sleep(FULL_POLL_S if answer < 0 else answer / 1000)
            self._places.add(place)
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew(), name="sislink-sis-gate-renew")
        try:
            yield
        finally:
            self._places.discard(place)
            # Given back even when the call was cancelled (the job stopped). Should Redis not
            # answer now, the place lapses by itself (PLACE_LEASE_S): the call's own outcome
            # stands.
            with contextlib.suppress(RedisError):
                await asyncio.shield(self._redis.zrem(self._keys[0], place))

    async def _renew(self) -> None:
        """Push the lapse of every place this process holds a lease further, every second,
        until the gate is closed."""
        while not self._closed:
            await asyncio.sleep(PLACE_RENEW_S)
            held = sorted(self._places)
            if not held:
                continue
            with contextlib.suppress(Exception):  # Redis briefly away: the lease has margin
                await self._renew_places(keys=[self._keys[0]], args=[self._hold_ms, *held])

    async def pause(self, seconds: float) -> None:
        from redis.exceptions import RedisError

        try:
            await self._pause(keys=[self._keys[2]], args=[max(1, round(seconds * 1000))])
        except RedisError as away:  # this client still waits itself; the next turn says why
            logger.warning("%s", self._unavailable(away))

    def _unavailable(self, away: Exception) -> SharedLimitsUnavailable:
        said = str(away).strip().splitlines()[0] if str(away).strip() else ""
        return SharedLimitsUnavailable(
            f"Redis at {self._where}, which keeps the SIS connection's limits across workers, "
            f"did not answer ({type(away).__name__}{': ' + said if said else ''}), so no call "
            f"was sent to the SIS. Check that Redis is up and that {REDIS_VARIABLE} (or a "
            "Redis SISLINK_BROKER_URL) names it, then run this again."
        )

    async def in_flight(self) -> int:
        """Calls under way now, by every process (for tests and the operator)."""
        return int(await self._redis.zcard(self._keys[0]))

    async def aclose(self) -> None:
        # The flag as well as the cancel: a cancel that lands in the middle of the renewer's
        # Redis call can come back from the Redis client as an ordinary error, which the
        # renewer suppresses (Redis briefly away); without the flag it renewed on, and this
        # waited for it for ever (a hung full-suite run, 2026-12-06).
        self._closed = True
        renewer = self._renewer
        try:
            if renewer is not None:
                renewer.cancel()
                try:
                    await renewer
                except asyncio.CancelledError:
                    # The renewer's own end, or this close being cancelled: that goes on up.
                    current = asyncio.current_task()
                    if current is not None and current.cancelling():
                        raise
        finally:
            await self._redis.aclose()


async def _keeping_a_cancel(call: Awaitable[T]) -> T:
    """`await call`, without losing a cancel of this task that lands while it runs.

    The Redis client can take a cancel that lands in the middle of a command for a broken
    connection (it closes the connection, and its retry reconnects and asks again), so the
    call returns, or fails as a connection error, as if nothing had been asked. A turn whose
    wait a timeout (or a stopped job) had cancelled then went on waiting for a place that its
    own caller held: a full-suite run hung that way twice (2026-12-06). A cancel still asked
    for (`Task.cancelling()` above what it was) is raised again once the call is back."""
    task = asyncio.current_task()
    asked = task.cancelling() if task is not None else 0
    try:
        result = await call
    except Exception:
        if task is not None and task.cancelling() > asked:
            raise asyncio.CancelledError from None
        raise
    if task is not None and task.cancelling() > asked:
        raise asyncio.CancelledError
    return result


def shared_gate(connection_id: int, settings: ConnectionSettings) -> RedisGate | None:
    """The shared gate for this connection, or None when no Redis is configured."""
    url = redis_url()
    if url is None:
        return None
    return RedisGate(
        url,
        name=f"{key_prefix()}:sis:{connection_id}",
        max_concurrency=settings.max_concurrency,
        requests_per_second=settings.requests_per_second,
    )
