"""A SIS connection's limits shared in Redis (sync/shared_limits.py), through the consumer's
gate: two clients with gates of their own (as two workers have) against the real Redis on this
machine and the built-in SIS over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from sislink.oneroster.consumer import ConnectionSettings, OAuth1Settings, OneRosterClient
from sislink.oneroster.consumer.exceptions import RateLimited
from sislink.oneroster.provider import server as provider_server
from sislink.oneroster.provider.faults import FaultConfig
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.sync.errors import InvalidConnectionDetails
from sislink.sync.shared_limits import RedisGate, with_configured_limits

REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module")
def refusing_sis() -> Iterator[RunningProvider]:
    """A SIS that answers every call 429, Retry-After 1 s."""
    with running_provider(profile="generic-1.1", students=20, rate_429=1.0) as sis:
        yield sis


def _settings(sis: RunningProvider) -> ConnectionSettings:
    return ConnectionSettings(
        version=sis.version,
        base_url=sis.base_url,
        auth=OAuth1Settings(key=sis.client_id, secret=sis.client_secret),
        max_retries=0,
    )


def _gate(name: str, *, concurrency: int = 4, rate: float | None = None) -> RedisGate:
    return RedisGate(REDIS, name=name, max_concurrency=concurrency, requests_per_second=rate)


def test_a_429_answered_to_one_worker_pauses_the_other_for_its_retry_after(
    refusing_sis: RunningProvider,
) -> None:
    name = f"sislink-test-{uuid.uuid4().hex}:sis:1"

    async def run() -> tuple[float, float]:
        first, second = _gate(name), _gate(name)
        try:
            async with OneRosterClient(_settings(refusing_sis), gate=first) as sis:
                with pytest.raises(RateLimited):
                    await sis.find_teacher_by_email("nobody@example.org")
            # The pause the SIS asked for, as every worker sees it in Redis (on Redis's clock).
            until_ms = int(await second._redis.get(f"{name}:pause_until") or 0)
            seconds, micros = await second._redis.time()
            left_s = (until_ms - (seconds * 1000 + micros // 1000)) / 1000
            began = time.monotonic()
            async with OneRosterClient(_settings(refusing_sis), gate=second) as sis:
                with pytest.raises(RateLimited):
                    await sis.find_teacher_by_email("nobody@example.org")
            return left_s, time.monotonic() - began
        finally:
            await first.aclose()
            await second.aclose()

    left_s, waited_s = asyncio.run(run())
    assert 0.5 < left_s <= 1.0  # Retry-After: 1
    # The other client sent nothing until the pause had passed.
    assert waited_s >= left_s


def test_a_retry_after_longer_than_a_client_waits_pauses_the_others_no_longer_than_that(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The built-in SIS asking every caller to come back in an hour.
    monkeypatch.setattr(
        provider_server, "FaultConfig", functools.partial(FaultConfig, retry_after_s=3600)
    )
    name = f"sislink-test-{uuid.uuid4().hex}:sis:1"

    async def run(sis: RunningProvider) -> float:
        gate = _gate(name)
        try:
            async with OneRosterClient(_settings(sis), gate=gate) as client:
                with pytest.raises(RateLimited, match="3600"):
                    await client.find_teacher_by_email("nobody@example.org")
            until_ms = int(await gate._redis.get(f"{name}:pause_until") or 0)
            seconds, micros = await gate._redis.time()
            return (until_ms - (seconds * 1000 + micros // 1000)) / 1000
        finally:
            await gate.aclose()

    with running_provider(profile="generic-1.1", students=5, rate_429=1.0) as sis:
        left_s = asyncio.run(run(sis))
    # This client gave up (an hour is past max_retry_after_s); the other workers wait at most
    # what a client would, not an hour each.
    assert 0 < left_s <= ConnectionSettings.max_retry_after_s


def test_two_gates_of_one_connection_never_let_more_calls_through_than_its_allowance() -> None:
    name = f"sislink-test-{uuid.uuid4().hex}:sis:1"
    in_flight = 0
    peak = 0

    async def call(gate: RedisGate) -> None:
        nonlocal in_flight, peak
        async with gate.turn():
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.01)
            in_flight -= 1

    async def run() -> int:
        first, second = _gate(name, concurrency=3), _gate(name, concurrency=3)
        try:
            await asyncio.gather(*(call(g) for g in (first, second) for _ in range(15)))
            return await first.in_flight()
        finally:
            await first.aclose()
            await second.aclose()

    left = asyncio.run(run())
    assert peak == 3  # each gate alone would have let 3 through: 6 at once
    assert left == 0  # every place given back


def test_the_shared_rate_spaces_turns_by_its_interval_in_microseconds_not_whole_milliseconds() -> (
    None
):
    name = f"sislink-test-{uuid.uuid4().hex}:sis:1"

    async def run() -> int:
        gate = _gate(name, rate=300)
        try:
            seconds, micros = await gate._redis.time()
            async with gate.turn():
                next_slot = int(await gate._redis.get(f"{name}:next_slot"))
            return next_slot - (seconds * 1_000_000 + micros)
        finally:
            await gate.aclose()

    ahead_us = asyncio.run(run())
    # 300 a second is a turn every 3,333 µs; in whole milliseconds it was every 3 ms (333 a
    # second, past the SIS's allowance). The turn was taken after the clock was read.
    assert 3_333 <= ahead_us < 3_333 + 60_000_000


def test_many_calls_of_one_process_waiting_for_the_rate_ask_redis_about_once_a_turn() -> None:
    name = f"sislink-test-{uuid.uuid4().hex}:sis:1"

    async def run() -> tuple[int, int]:
        gate = _gate(name, concurrency=16, rate=200)
        asked = 0
        turn = gate._turn

        async def counted(*args: object, **kwargs: object) -> object:
            nonlocal asked
            asked += 1
            return await turn(*args, **kwargs)

        gate._turn = counted  # type: ignore[method-assign]

        async def call() -> None:
            async with gate.turn():
                await asyncio.sleep(0.005)

        try:
            await asyncio.gather(*(call() for _ in range(40)))
        finally:
            await gate.aclose()
        return asked, 40

    asked, calls = asyncio.run(run())
    # One caller asks at a time, the others queue in the process: a turn costs its own ask
    # and the asks of its wait for the next slot (one every 5 ms here), not one ask per
    # waiting caller each time they all woke (16 waiting: ~13 asks a call were measured).
    assert asked <= calls * 3


def test_the_shared_allowance_comes_from_the_environment_and_bad_values_are_refused() -> None:
    base = ConnectionSettings(
        version="1.2",
        base_url="http://127.0.0.1:9/ims/oneroster",
        auth=OAuth1Settings(key="k", secret="s"),
    )
    chosen = with_configured_limits(
        base,
        {"SISLINK_SIS_MAX_CONCURRENCY": "5", "SISLINK_SIS_REQUESTS_PER_SECOND": "12.5"},
    )
    assert (chosen.max_concurrency, chosen.requests_per_second) == (5, 12.5)
    assert with_configured_limits(base, {}) == base
    with pytest.raises(InvalidConnectionDetails, match="SISLINK_SIS_MAX_CONCURRENCY is '0'"):
        with_configured_limits(base, {"SISLINK_SIS_MAX_CONCURRENCY": "0"})
    with pytest.raises(InvalidConnectionDetails, match="SISLINK_SIS_REQUESTS_PER_SECOND"):
        with_configured_limits(base, {"SISLINK_SIS_REQUESTS_PER_SECOND": "fast"})


def test_calls_longer_than_a_minute_keep_their_places_while_no_other_call_starts() -> None:
    name = f"sislink-test-{uuid.uuid4().hex}:sis:1"

    async def run() -> tuple[int, bool]:
        first, second = _gate(name, concurrency=1), _gate(name, concurrency=1)
        try:
            async with first.turn():
                # The set of places outlives the last turn by a minute: as if that minute had
                # nearly passed with the call still under way (a slow SIS, a long deadline).
                await first._redis.pexpire(f"{name}:in_flight", 1500)
                await asyncio.sleep(2.5)  # renewals (every second) keep it
                in_flight = await second.in_flight()
                try:
                    async with asyncio.timeout(0.5):
                        async with second.turn():
                            let_through = True
                except TimeoutError:
                    let_through = False
            return in_flight, let_through
        finally:
            await first.aclose()
            await second.aclose()

    async def run_or_hang_detected() -> tuple[int, bool]:
        # A hang detector, not a speed bound: this test hung a whole suite twice (see the
        # test below); it now fails instead.
        async with asyncio.timeout(60):
            return await run()

    in_flight, let_through = asyncio.run(run_or_hang_detected())
    assert in_flight == 1
    assert not let_through  # the allowance is one call: the second waits for the first


def test_closing_a_gate_ends_its_renewer_even_when_redis_turns_the_cancel_into_an_error() -> None:
    """A full-suite run hung for good in `aclose()` (2026-12-06): the renewer, cancelled in the
    middle of its Redis call, can see the cancel come back from the Redis client as an
    ordinary error, which it suppresses (Redis briefly away), and it went on renewing every
    second; `aclose()` waited for it for ever, and so would a job closing its gate."""
    name = f"sislink-test-{uuid.uuid4().hex}:sis:1"

    async def run() -> None:
        gate = _gate(name, concurrency=1)
        renewing = asyncio.Event()

        async def renew_turning_the_cancel_into_an_error(**_: object) -> None:
            renewing.set()
            try:
                await asyncio.sleep(3600)  # the Redis call, under way
            except asyncio.CancelledError:
                raise ConnectionError("Connection closed by server.") from None

        gate._renew_places = renew_turning_the_cancel_into_an_error  # type: ignore[method-assign]
        async with gate.turn():
            await asyncio.wait_for(renewing.wait(), timeout=10)
        # Before the fix aclose() waited for ever; a deadline (a hang detector, not a speed
        # bound) ends the wait, and says whether it had to.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(30) as deadline:
                await gate.aclose()
        assert not deadline.expired()

    asyncio.run(run())


def test_a_turn_whose_wait_is_cancelled_ends_even_when_redis_swallows_the_cancel() -> None:
    """A full-suite run hung for good in the test above (2026-12-06, twice): the second
    gate's wait for a place, cancelled by its timeout in the middle of a Redis call, went on
    waiting, for the place its own caller held. The Redis client can swallow a cancel that
    lands mid-command (it closes the connection and its retry asks again), so the call just
    came back. Here the gate's Redis call does exactly that, once."""
    name = f"sislink-test-{uuid.uuid4().hex}:sis:1"

    async def run() -> tuple[bool, bool]:
        first, second = _gate(name, concurrency=1), _gate(name, concurrency=1)
        real_turn = second._turn
        swallowed = False

        async def turn_swallowing_one_cancel(**arguments: Any) -> Any:
            nonlocal swallowed
            if not swallowed:
                try:
                    await asyncio.sleep(3600)  # the Redis call, under way
                except asyncio.CancelledError:
                    swallowed = True  # and asked again, as a retry would
            return await real_turn(**arguments)

        second._turn = turn_swallowing_one_cancel
        ended_by_its_timeout = False
        try:
            async with first.turn():
                # A deadline around it all (a hang detector, not a speed bound): before the
                # fix the inner timeout's cancel was lost and only this one ended the wait.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(20):
                        try:
                            async with asyncio.timeout(0.5):
                                async with second.turn():
                                    pass
                        except TimeoutError:
                            ended_by_its_timeout = True
        finally:
            await first.aclose()
            await second.aclose()
        return swallowed, ended_by_its_timeout

    swallowed, ended_by_its_timeout = asyncio.run(run())
    assert swallowed
    assert ended_by_its_timeout
