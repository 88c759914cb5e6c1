"""What the consumer puts on the wire, as the SIS sees it: paging options, page-by-page
streaming, timeouts, Retry-After, which calls are retried, the concurrency and rate limits, the
breaker's single probe, and a SIS that ignores `filter`.

Each test watches the built-in SIS from the server side (`watched_provider`), so it checks what
the SIS received and when, not what the client says it did.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import parse_qs

import pytest

from sislink.oneroster.consumer import (
    ConnectionSettings,
    OneRosterClient,
    RateLimited,
    ServerError,
    SISDown,
    SISTimeout,
)
from sislink.oneroster.models import Category, User

pytestmark = pytest.mark.anyio
Connect = Callable[..., ConnectionSettings]
Watched = Callable[..., AbstractContextManager[Any]]


# ---- paging --------------------------------------------------------------------------------


async def test_sort_order_by_and_fields_reach_the_sis_and_take_effect(
    connect: Connect, watched: Watched
) -> None:
    with watched(students=60) as w:
        async with OneRosterClient(connect(w.sis)) as sis:
            records = [
                r
                async for r in sis.iter_records(
                    "users",
                    sort="familyName",
                    order_by="desc",
                    fields=["sourcedId", "familyName"],
                    page_size=25,
                )
            ]
            users = [
                u
                async for u in sis.iter_collection(
                    "users",
                    sort="familyName",
                    order_by="asc",
                    fields=["sourcedId", "status", "givenName", "familyName", "roles"],
                    page_size=25,
                )
            ]
        total = w.sis.store.count("user")
        asked = [parse_qs(r.query) for r in w.watch.calls("GET")]

    assert len(records) == len({r["sourcedId"] for r in records}) == total
    assert all(set(r) == {"sourcedId", "familyName"} for r in records)  # fields took effect
    names = [r["familyName"] for r in records]
    assert names == sorted(names, reverse=True) and names != sorted(names)  # so did the order
    assert len(users) == total and all(isinstance(u, User) for u in users)
    assert [u.family_name for u in users] == sorted(names)
    assert all(u.email is None for u in users)  # not asked for, not sent
    pages = math.ceil(total / 25)
    assert len(asked) == 2 * pages  # every page asked with the options, not only the first
    assert all(q["sort"] == ["familyName"] for q in asked)
    assert [q["orderBy"] for q in asked] == [["desc"]] * pages + [["asc"]] * pages
    assert asked[0]["fields"] == ["sourcedId,familyName"]
    assert asked[-1]["fields"] == ["sourcedId,status,givenName,familyName,roles"]


async def test_paging_streams_page_by_page_with_at_most_one_page_asked_ahead(
    connect: Connect, watched: Watched
) -> None:
    with watched(students=60) as w:
        async with OneRosterClient(connect(w.sis)) as sis:
            pages_asked_when_seen = [
                len(w.watch.calls("GET")) async for _ in sis.iter_records("users", page_size=10)
            ]
        total = w.sis.store.count("user")
        pages_asked = len(w.watch.calls("GET"))
    pages = math.ceil(total / 10)
    assert len(pages_asked_when_seen) == total and pages > 3
    for i, asked in enumerate(pages_asked_when_seen):
        page = i // 10 + 1
        # A record of page p reaches the caller before page p+2 is asked for.
        assert asked <= page + 1, f"record {i} (page {page}) came after {asked} pages were asked"
    assert pages_asked == pages


# ---- timeouts ------------------------------------------------------------------------------


async def test_a_sis_slower_than_the_read_timeout_is_retried_then_reported_clearly(
    connect: Connect, watched: Watched
) -> None:
    with watched(latency_ms=800) as w:
        settings = connect(w.sis, read_timeout_s=0.2, max_retries=2)
        async with OneRosterClient(settings) as sis:
            with pytest.raises(SISTimeout) as caught:
                await sis.page("teachers", limit=1)
        attempts = len(w.watch.calls("GET"))
    error = caught.value
    assert "GET /ims/oneroster/rostering/v1p2/teachers" in error.message
    assert "did not answer within 0.2 s (read_timeout_s)" in error.message
    assert error.method == "GET" and error.path.endswith("/teachers")
    assert attempts == 3  # the first attempt and two retries


async def test_a_call_that_timed_out_once_is_retried_and_succeeds(
    connect: Connect, watched: Watched
) -> None:
    # Latency between 0 and 0.6 s (seeded): some attempts are slower than the 0.3 s timeout.
    with watched(latency_ms=300, jitter_ms=300) as w:
        settings = connect(w.sis, read_timeout_s=0.3, max_retries=8)
        async with OneRosterClient(settings) as sis:
            pages = [await sis.page("teachers", limit=1) for _ in range(6)]
            attempts = sis.calls_made - sis.tokens_fetched
    assert all(len(p.records) == 1 for p in pages)
    assert attempts > 6  # some attempts timed out, and were retried


# ---- Retry-After ---------------------------------------------------------------------------


async def test_the_client_waits_as_long_as_retry_after_asks(
    connect: Connect, watched: Watched
) -> None:
    with watched(rate_429=0.25) as w:
        # Backoff alone would wait at most 0.5 s: only Retry-After makes it wait a second.
        settings = connect(w.sis, max_retries=10, backoff_max_s=0.5)
        async with OneRosterClient(settings) as sis:
            for _ in range(3):
                await sis.page("teachers", limit=1)
        calls = w.watch.calls("GET")
    refused = [(first, retry) for first, retry in itertools.pairwise(calls) if first.status == 429]
    assert refused, "the seeded faults answered no call 429"
    for first, retry in refused:
        assert first.answer_headers["retry-after"] == "1"
        assert first.answered is not None
        assert retry.started - first.answered >= 1.0


async def test_a_retry_after_longer_than_the_client_waits_gives_up_with_rate_limited(
    connect: Connect, watched: Watched
) -> None:
    with watched(rate_429=1.0) as w:
        settings = connect(w.sis, max_retry_after_s=0.5)
        async with OneRosterClient(settings) as sis:
            with pytest.raises(RateLimited) as caught:
                await sis.page("teachers", limit=1)
        attempts = len(w.watch.calls("GET"))
    assert attempts == 1  # given up at once, not after waiting
    assert caught.value.status_code == 429
    assert (
        "asked to wait 1 s (Retry-After), longer than max_retry_after_s (0.5 s)"
        in caught.value.message
    )


# ---- what is retried -----------------------------------------------------------------------


async def test_a_delete_that_meets_503s_is_retried_until_it_is_done(
    connect: Connect, watched: Watched
) -> None:
    with watched() as w:
        async with OneRosterClient(connect(w.sis)) as sis:
            await sis.put_category(Category(sourced_id="cat-retried", title="Homework"))
            assert w.sis.store.get("category", "cat-retried") is not None
            w.watch.fail_with, w.watch.fail_count = 503, 2
            # delete_category is not part of the client: a category is deleted by path.
            url = w.sis.url("gradebook/v1p2/categories/cat-retried")
            response = await sis._send("DELETE", url, endpoint=None)
        deletes = w.watch.calls("DELETE")
        assert w.sis.store.get("category", "cat-retried") is None
    assert response.is_success
    assert [d.status for d in deletes] == [503, 503, response.status_code]


async def test_a_delete_is_retried_until_max_retries_then_reported(
    connect: Connect, watched: Watched
) -> None:
    with watched(rate_503=1.0) as w:
        async with OneRosterClient(connect(w.sis, max_retries=3)) as sis:
            with pytest.raises(ServerError) as caught:
                await sis.delete_result("r-1")
        deletes = w.watch.calls("DELETE")
    assert [d.status for d in deletes] == [503] * 4
    assert "the SIS failed on every attempt (3 retries)" in caught.value.message


async def test_a_post_that_meets_a_503_is_not_retried(connect: Connect, watched: Watched) -> None:
    with watched(rate_503=1.0) as w:
        async with OneRosterClient(connect(w.sis, max_retries=5)) as sis:
            with pytest.raises(ServerError) as caught:
                await sis._send(
                    "POST",
                    w.sis.url("gradebook/v1p2/lineItems"),
                    endpoint=None,
                    content=b'{"lineItem": {}}',
                )
        posts = w.watch.calls("POST")
    assert [p.status for p in posts] == [503]  # once: repeating a POST could apply it twice
    assert "a POST is never retried" in caught.value.message


# ---- limits --------------------------------------------------------------------------------


async def test_no_more_calls_are_in_flight_than_max_concurrency(
    connect: Connect, watched: Watched
) -> None:
    with watched(latency_ms=30) as w:
        async with OneRosterClient(connect(w.sis, max_concurrency=4)) as sis:
            await asyncio.gather(
                *(
                    sis.put_category(Category(sourced_id=f"cat-{n}", title=f"Category {n}"))
                    for n in range(40)
                )
            )
        puts = w.watch.calls("PUT")
    assert len(puts) == 40 and all(p.status in (200, 201) for p in puts)
    assert w.watch.most_in_flight == 4  # never more, and the limit was used


async def test_requests_per_second_spaces_the_calls_the_sis_receives(
    connect: Connect, watched: Watched
) -> None:
    per_second = 5
    with watched() as w:
        settings = connect(w.sis, requests_per_second=per_second)
        async with OneRosterClient(settings) as sis:
            await asyncio.gather(*(sis.page("teachers", limit=1) for _ in range(8)))
        arrivals = [r.started for r in w.watch.requests]  # the token request included
    assert len(arrivals) == 9
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    interval = 1 / per_second
    # Calls start one interval apart; each reaches the SIS a little after it starts, so a gap
    # may be shorter by that little, never by much.
    assert min(gaps) >= interval * 0.6, gaps
    assert arrivals[-1] - arrivals[0] >= interval * (len(arrivals) - 2)


# ---- the breaker ---------------------------------------------------------------------------


async def test_after_the_cooldown_one_probe_reaches_the_sis_and_decides(
    connect: Connect, watched: Watched
) -> None:
    with watched() as w:
        settings = connect(w.sis, failure_threshold=2, failure_cooldown_s=0.3, max_retries=0)
        async with OneRosterClient(settings) as sis:
            await sis.authenticate()
            w.watch.fail_with = 503
            with pytest.raises(ServerError):
                await sis.page("teachers", limit=1)
            with pytest.raises(SISDown):
                await sis.page("teachers", limit=1)

            # Still down after the cooldown: one probe, which fails; the others wait it out.
            await asyncio.sleep(0.35)
            before = len(w.watch.calls())
            outcomes = await asyncio.gather(
                *(sis.page("teachers", limit=1) for _ in range(10)), return_exceptions=True
            )
            assert len(w.watch.calls()) == before + 1
            assert all(isinstance(o, SISDown) for o in outcomes)
            assert sum("no attempt made" in str(o) for o in outcomes) == 9

            # Back up: again one probe; it succeeds and closes the breaker.
            w.watch.fail_with = None
            await asyncio.sleep(0.35)
            before = len(w.watch.calls())
            outcomes = await asyncio.gather(
                *(sis.page("teachers", limit=1) for _ in range(10)), return_exceptions=True
            )
            assert len(w.watch.calls()) == before + 1
            assert sum(isinstance(o, SISDown) for o in outcomes) == 9
            pages = await asyncio.gather(*(sis.page("teachers", limit=1) for _ in range(10)))
            assert all(len(p.records) == 1 for p in pages)


# ---- a SIS that ignores filter -------------------------------------------------------------


async def test_a_sis_ignoring_the_email_filter_does_not_make_another_teacher_this_one(
    connect: Connect, watched: Watched
) -> None:
    with watched() as w:
        w.watch.ignores_filter = True
        async with OneRosterClient(connect(w.sis)) as sis:
            assert await sis.find_teacher_by_email("nobody@example.org") is None
            found = await sis.find_teacher_by_email(w.sis.teacher_email.upper())
        asked = [parse_qs(r.query) for r in w.watch.calls("GET")]
    assert found is not None and (found.email or "").lower() == w.sis.teacher_email.lower()
    assert all("email=" in q["filter"][0] for q in asked)  # the filter was sent, and ignored
