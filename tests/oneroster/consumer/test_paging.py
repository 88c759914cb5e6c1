"""Following pages: Link next, limit/offset with X-Total-Count, and servers that ignore offset."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from sislink.oneroster.consumer.paging import (
    LinkElsewhere,
    OffsetIgnored,
    Pager,
    WalkStopped,
    parse_link_header,
    with_query,
)

BASE = "http://sis.test/ims/oneroster/rostering/v1p2/users"


def test_link_header_rels_are_read_whatever_their_quoting_and_order() -> None:
    links = parse_link_header(
        '<http://a/u?offset=2>; rel="next", <http://a/u?offset=8>; rel=last,'
        ' <http://a/u?offset=0>; title="x"; rel="first prev"'
    )
    assert links == {
        "next": "http://a/u?offset=2",
        "last": "http://a/u?offset=8",
        "first": "http://a/u?offset=0",
        "prev": "http://a/u?offset=0",
    }
    assert parse_link_header(None) == {}
    assert parse_link_header("") == {}


def test_query_values_are_percent_encoded_with_spaces_as_20() -> None:
    url = with_query(BASE + "?limit=5", {"filter": "email='o''neil x@a.org'", "limit": "10"})
    query = urlsplit(url).query
    assert "+" not in query and "%20" in query
    assert parse_qs(query) == {"filter": ["email='o''neil x@a.org'"], "limit": ["10"]}


def test_offset_paging_stops_at_the_total_count() -> None:
    pager = Pager(BASE, limit=2)
    first = pager.first_page_url()
    assert parse_qs(urlsplit(first).query) == {"limit": ["2"], "offset": ["0"]}
    second = pager.next_page_url(first, ["a", "b"], link_header=None, total_count="3")
    assert second is not None
    assert parse_qs(urlsplit(second).query)["offset"] == ["2"]
    assert pager.next_page_url(second, ["c"], link_header=None, total_count="3") is None
    assert pager.records_read == 3


def test_without_a_total_a_short_page_is_the_last() -> None:
    pager = Pager(BASE, limit=2)
    url = pager.first_page_url()
    url2 = pager.next_page_url(url, ["a", "b"], link_header=None, total_count=None)
    assert url2 is not None
    assert pager.next_page_url(url2, ["c"], link_header=None, total_count=None) is None


def test_an_empty_page_ends_the_collection() -> None:
    pager = Pager(BASE, limit=2)
    assert pager.next_page_url(BASE, [], link_header=None, total_count="10") is None


def test_link_next_is_followed_in_preference_to_offset() -> None:
    pager = Pager(BASE, limit=2)
    link = '<cursor?page=abc>; rel="next"'
    nxt = pager.next_page_url(pager.first_page_url(), ["a", "b"], link_header=link, total_count="2")
    assert nxt == "http://sis.test/ims/oneroster/rostering/v1p2/cursor?page=abc"


def test_a_page_repeating_the_previous_one_means_offset_is_ignored() -> None:
    pager = Pager(BASE, limit=2)
    url = pager.first_page_url()
    url2 = pager.next_page_url(url, ["a", "b"], link_header=None, total_count="6")
    assert url2 is not None
    with pytest.raises(OffsetIgnored, match="repeats page 1"):
        pager.next_page_url(url2, ["a", "b"], link_header=None, total_count="6")


def test_a_link_next_pointing_back_at_a_read_page_is_refused() -> None:
    pager = Pager(BASE, limit=2)
    first = pager.first_page_url()
    with pytest.raises(WalkStopped, match="points back at page 1"):
        pager.next_page_url(
            first, ["a", "b"], link_header=f'<{first}>; rel="next"', total_count=None
        )
