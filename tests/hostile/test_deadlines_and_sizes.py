"""Item 3 of issue 17: every answer has a deadline (headers and whole body) and a size; one
call's retries share one deadline; a job has a total budget. The bounds are configured small
and the outcome and sentence checked (never the wall clock)."""

from __future__ import annotations

import pytest

from hostile.hostile_sis import (
    HostileSIS,
    dribbled_body,
    gzip_bomb,
    huge_body,
    huge_token,
    slow_headers,
    unread_encoding,
)
from sislink.oneroster.consumer import OneRosterClient, SISTimeout
from sislink.oneroster.consumer.exceptions import (
    MalformedResponse,
    ResponseTooLarge,
    TimeBudgetSpent,
)

pytestmark = pytest.mark.anyio

USERS = "/ims/oneroster/rostering/v1p2/users"


async def _read_users(sis: HostileSIS, **bounds: object) -> None:
    async with OneRosterClient(sis.settings(**bounds)) as client:
        async for _ in client.iter_records("users"):
            pass


async def test_a_body_dribbled_a_byte_at_a_time_ends_at_the_request_deadline() -> None:
    """Each byte comes well within the read timeout: only the deadline on the whole answer
    can end it."""
    with HostileSIS(dribbled_body(every_s=0.05)) as sis, pytest.raises(SISTimeout) as caught:
        await _read_users(sis, request_deadline_s=0.3, call_deadline_s=0.7, read_timeout_s=30)
    message = str(caught.value)
    assert message.startswith("The SIS took longer than")
    assert f"a page of users from {sis.origin}{USERS}" in message
    assert "limit=" not in message


async def test_retries_of_an_answer_that_never_comes_stop_at_the_call_deadline() -> None:
    """The issue's 7 attempts of 60 s: retries share one deadline, so a call ends there."""
    with HostileSIS(slow_headers(seconds=5)) as sis, pytest.raises(SISTimeout) as caught:
        await _read_users(sis, request_deadline_s=0.3, call_deadline_s=0.5, max_retries=6)
    assert "every attempt and retry included" in str(caught.value)
    assert "SISLINK_SIS_CALL_DEADLINE_S" in str(caught.value)
    assert 1 <= len(sis.calls()) <= 2  # 0.3 s, then the 0.2 s left; not 7 attempts


async def test_headers_held_back_past_the_request_deadline_are_named_in_words() -> None:
    with HostileSIS(slow_headers(seconds=5)) as sis, pytest.raises(SISTimeout) as caught:
        await _read_users(sis, request_deadline_s=0.2, max_retries=0)
    assert str(caught.value) == (
        f"The SIS took longer than 0.2 s to send a page of users from {sis.origin}{USERS} "
        "(SISLINK_SIS_REQUEST_DEADLINE_S, request_deadline_s); it may be overloaded: try "
        "again later, or raise it if the SIS is only slow."
    )


async def test_a_body_without_end_stops_being_read_at_the_size_cap() -> None:
    with (
        HostileSIS(huge_body(endless=True)) as sis,
        pytest.raises(ResponseTooLarge) as caught,
    ):
        await _read_users(sis, max_response_bytes=1_000_000)
    message = str(caught.value)
    assert "The SIS sent more than the 1,000,000 bytes sislink reads for a page of users" in message
    assert "SISLINK_SIS_MAX_RESPONSE_BYTES" in message


async def test_a_declared_length_past_the_cap_is_refused_before_reading() -> None:
    with (
        HostileSIS(huge_body(endless=False, size=2_000_000)) as sis,
        pytest.raises(
            ResponseTooLarge,
            match=r"The SIS announced 2,000,000 bytes, more than the 1,000,000 bytes sislink reads",
        ),
    ):
        await _read_users(sis, max_response_bytes=1_000_000)


async def test_a_small_compressed_body_is_capped_by_its_size_once_inflated() -> None:
    with (
        HostileSIS(gzip_bomb(decoded_size=20_000_000)) as sis,
        pytest.raises(ResponseTooLarge, match=r"The SIS sent more than the 1,000,000 bytes"),
    ):
        await _read_users(sis, max_response_bytes=1_000_000)


async def _peak_memory_while_reading_users(sis: HostileSIS, **bounds: object) -> int:
    """The most memory Python held while the client read (tracemalloc counts every bytes
    object, the inflated body's included): a count of bytes, not a clock."""
    import tracemalloc

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        with pytest.raises(ResponseTooLarge, match=r"The SIS sent more than the 1,000,000 bytes"):
            await _read_users(sis, **bounds)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


async def test_a_big_gzip_bomb_never_grows_in_memory_much_past_the_cap() -> None:
    """100 MB in ~100 KB of gzip: httpx inflated one 64 KiB network chunk (~64 MB) before
    sislink counted it. Inflated by sislink a cap at a time, the client holds about the cap."""
    with HostileSIS(gzip_bomb(decoded_size=100_000_000)) as sis:
        peak = await _peak_memory_while_reading_users(sis, max_response_bytes=1_000_000)
    assert peak < 8_000_000, f"held {peak:,} bytes reading a body capped at 1,000,000"


async def test_stacked_compression_is_refused_before_its_body_is_read() -> None:
    """`Content-Encoding: gzip, gzip`: a few hundred bytes that inflated to the whole bomb
    in one step (765 MB of RSS with a 1 MB cap)."""
    with (
        HostileSIS(gzip_bomb(decoded_size=50_000_000, layers=2)) as sis,
        pytest.raises(MalformedResponse) as caught,
    ):
        await _read_users(sis, max_response_bytes=1_000_000)
    message = str(caught.value)
    assert message.startswith(
        f"The SIS answered a page of users from {sis.origin}{USERS} with the Content-Encoding "
        "'gzip, gzip', which sislink does not read"
    )
    assert "stopped before reading the body" in message


async def test_an_encoding_sislink_did_not_ask_for_is_named_and_refused() -> None:
    with HostileSIS(unread_encoding("br")) as sis, pytest.raises(MalformedResponse) as caught:
        await _read_users(sis)
    assert "Content-Encoding 'br'" in str(caught.value)
    assert sis.calls()[0].headers["accept-encoding"] == "gzip, deflate"


async def test_a_deflate_body_is_read_whether_zlib_wrapped_or_raw() -> None:
    import json
    import zlib

    from hostile.hostile_sis import Received, Reply, not_found, user

    page = json.dumps({"users": [user("u-1")]}).encode()
    raw = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    bodies = {"wrapped": zlib.compress(page), "raw": raw.compress(page) + raw.flush()}
    for kind, body in bodies.items():

        def shape(request: Received, body: bytes = body) -> Reply:
            if not request.path.startswith("/ims/oneroster/"):
                return not_found(request)
            headers = {"Content-Type": "application/json", "Content-Encoding": "deflate"}
            return Reply(200, headers, body)

        with HostileSIS(shape) as sis:
            async with OneRosterClient(sis.settings()) as client:
                got = [u["sourcedId"] async for u in client.iter_records("users")]
        assert got == ["u-1"], kind


async def test_a_token_answer_without_end_stops_at_the_token_cap() -> None:
    with HostileSIS(huge_token()) as sis, pytest.raises(ResponseTooLarge) as caught:
        await _read_users(sis, max_token_response_bytes=4096)
    assert "4,096 bytes sislink reads for a token" in str(caught.value)
    assert "SISLINK_SIS_MAX_TOKEN_RESPONSE_BYTES" in str(caught.value)
    assert sis.calls() == []  # no OneRoster call was made without a token


async def test_a_job_stops_when_its_time_budget_is_spent() -> None:
    with HostileSIS(slow_headers(seconds=0.15)) as sis:
        async with OneRosterClient(sis.settings(job_time_budget_s=0.4)) as client:
            with pytest.raises(TimeBudgetSpent) as caught:
                for _ in range(20):
                    await client.page("users", limit=1)
    assert "spent its time budget of 0.4 s" in str(caught.value)
    assert "SISLINK_SIS_JOB_BUDGET_S" in str(caught.value)
    assert len(sis.calls()) <= 4


async def test_waiting_for_one_of_the_clients_own_slots_does_not_count_against_a_call() -> None:
    """Six calls queued behind max_concurrency=1 take longer together than one call's deadline;
    each call's own time is short, so all of them succeed (found by consumer_writes: 2,000
    queued PUTs ran out of call_deadline_s behind each other)."""
    import asyncio

    with HostileSIS(slow_headers(seconds=0.1)) as sis:
        settings = sis.settings(max_concurrency=1, call_deadline_s=0.35, request_deadline_s=0.3)
        async with OneRosterClient(settings) as client:
            pages = await asyncio.gather(*(client.page("users", limit=1) for _ in range(6)))
    assert [len(page.records) for page in pages] == [1] * 6


async def test_a_body_that_does_not_inflate_as_its_encoding_says_is_named() -> None:
    from hostile.hostile_sis import Received, Reply, not_found

    def shape(request: Received) -> Reply:
        if not request.path.startswith("/ims/oneroster/"):
            return not_found(request)
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        return Reply(200, headers, b"this is not gzip at all")

    with HostileSIS(shape) as sis, pytest.raises(MalformedResponse) as caught:
        await _read_users(sis)
    assert "does not inflate as its Content-Encoding (gzip) says" in str(caught.value)
