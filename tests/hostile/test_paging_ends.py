"""Item 1 of issue 17: a collection's walk ends, whatever the SIS sends (with small bounds
configured, the outcome and the sentence are checked, never the wall clock)."""

from __future__ import annotations

import itertools

import pytest

from hostile.hostile_sis import HostileSIS, alternating_pages, endless_new_records
from sislink.oneroster.consumer import ConnectionSettings, OAuth2Settings, OneRosterClient
from sislink.oneroster.consumer.exceptions import RunawayCollection
from sislink.oneroster.consumer.paging import Pager, WalkStopped

pytestmark = pytest.mark.anyio

SIS_ROOT = "https://sis.example.org/ims/oneroster"


async def _read_users(sis: HostileSIS, **bounds: object) -> int:
    count = 0
    async with OneRosterClient(sis.settings(**bounds)) as client:
        async for _ in client.iter_records("users"):
            count += 1
    return count


async def test_new_records_on_every_page_stop_at_the_record_ceiling_whatever_the_total_claims() -> (
    None
):
    with (
        HostileSIS(endless_new_records(claimed_total=10**9)) as sis,
        pytest.raises(RunawayCollection) as caught,
    ):
        await _read_users(sis, max_records_per_collection=1_000)
    message = str(caught.value)
    assert "users collection" in message
    assert "past the ceiling of 1,000 records" in message
    assert "SISLINK_SIS_MAX_RECORDS" in message
    assert len(sis.calls()) <= 12  # 10 pages of 100, the one past it, and a prefetch at most


async def test_more_records_than_the_sis_said_it_had_stop_the_walk() -> None:
    with (
        HostileSIS(endless_new_records(claimed_total=250)) as sis,
        pytest.raises(RunawayCollection, match=r"although the SIS said it had 250"),
    ):
        await _read_users(sis)


async def test_pages_past_the_page_ceiling_stop_the_walk() -> None:
    with (
        HostileSIS(endless_new_records(claimed_total=None, page=1)) as sis,
        pytest.raises(RunawayCollection, match=r"past the ceiling of 30 pages") as caught,
    ):
        await _read_users(sis, max_pages_per_collection=30)
    assert "SISLINK_SIS_MAX_PAGES" in str(caught.value)


async def test_a_walk_longer_than_its_time_budget_stops() -> None:
    with (
        HostileSIS(endless_new_records(claimed_total=None)) as sis,
        pytest.raises(RunawayCollection, match=r"longer than its time budget of 0.2 s"),
    ):
        await _read_users(sis, collection_time_budget_s=0.2)


async def test_pages_whose_next_links_point_at_each_other_stop_when_a_page_comes_again() -> None:
    with (
        HostileSIS(alternating_pages(with_nonce=False)) as sis,
        pytest.raises(RunawayCollection, match=r"page 3 holds the same records as page 1"),
    ):
        await _read_users(sis)
    assert len(sis.calls()) <= 4


async def test_alternating_pages_behind_ever_new_links_stop_when_their_records_come_again() -> None:
    with (
        HostileSIS(alternating_pages(with_nonce=True)) as sis,
        pytest.raises(
            RunawayCollection, match=r"page 3 holds the same records as page 1"
        ) as caught,
    ):
        await _read_users(sis)
    assert "in a loop" in str(caught.value)
    assert len(sis.calls()) <= 4


@pytest.mark.parametrize("page_size", [100, 1000])
def test_the_default_bounds_stop_a_sis_inventing_records_with_a_huge_total(page_size: int) -> None:
    """No bound configured: the defaults alone end the walk at 500,000 records (pages of 100
    reach the page ceiling there too), the issue's 1,045,000 invented people are never
    reached. The Pager is fed made-up ids, as the client feeds it each page's (no I/O: the
    small bounds above are the same check over HTTP)."""
    defaults = ConnectionSettings(
        version="1.2",
        base_url=SIS_ROOT,
        auth=OAuth2Settings(token_url=f"{SIS_ROOT}/token", client_id="id", client_secret="s"),
    )
    pager = Pager(
        f"{SIS_ROOT}/rostering/v1p2/users",
        page_size,
        max_records=defaults.max_records_per_collection,
        max_pages=defaults.max_pages_per_collection,
        link_prefixes=(defaults.root_url,),
    )
    url: str | None = pager.first_page_url()
    invented = itertools.count()
    with pytest.raises(WalkStopped) as caught:
        while url is not None:
            ids = [f"u-{next(invented)}" for _ in range(page_size)]
            url = pager.next_page_url(url, ids, link_header=None, total_count=str(10**12))
    assert 500_000 <= pager.records_read <= 500_000 + page_size
    assert caught.value.bound in ("records", "pages")
    assert "past the ceiling of" in str(caught.value)
