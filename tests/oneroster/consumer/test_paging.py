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


def test_a_page_already_read_by_its_url_stops_the_walk_whatever_its_query_order() -> None:
    pager = Pager(BASE, limit=2)
    first = BASE + "?a=1&b=2"
    second = pager.next_page_url(
        first, ["a", "b"], link_header=f'<{BASE}?c=3>; rel="next"', total_count=None
    )
    assert second is not None
    with pytest.raises(WalkStopped, match="page 2's next link points back at page 1"):
        pager.next_page_url(
            second, ["c", "d"], link_header=f'<{BASE}?b=2&a=1>; rel="next"', total_count=None
        )


def test_records_beyond_the_first_total_and_its_slack_stop_the_walk() -> None:
    pager = Pager(BASE, limit=2)
    url = pager.first_page_url()
    url = pager.next_page_url(url, ["a", "b"], link_header=None, total_count="2")  # type: ignore[assignment]
    assert url is None  # offset paging ends at the total by itself
    linked = Pager(BASE, limit=2)
    link = f'<{BASE}?page=next>; rel="next"'
    page_url = linked.first_page_url()
    for n in range(2):  # 4 records: the total (2) plus one page of slack
        page_url = linked.next_page_url(  # type: ignore[assignment]
            page_url,
            [f"{n}a", f"{n}b"],
            link_header=link.replace("next>", f"{n}>"),
            total_count="2",
        )
    with pytest.raises(WalkStopped, match="although the SIS said it had 2"):
        linked.next_page_url(page_url, ["x", "y"], link_header=link, total_count="999")


def test_a_next_link_to_another_origin_or_outside_the_base_path_is_refused() -> None:
    root = "http://sis.test/ims/oneroster"
    for elsewhere in (
        "http://other.test/ims/oneroster/rostering/v1p2/users?offset=2",
        "http://sis.test:8080/ims/oneroster/rostering/v1p2/users?offset=2",
        "https://sis.test/ims/oneroster/rostering/v1p2/users?offset=2",
        "http://sis.test/admin/users?offset=2",
        "http://sis.test/ims/oneroster/../../admin?offset=2",
        "//other.test/ims/oneroster/rostering/v1p2/users",
    ):
        pager = Pager(BASE, limit=2, link_prefixes=(root,))
        with pytest.raises(LinkElsewhere):
            pager.next_page_url(
                pager.first_page_url(),
                ["a", "b"],
                link_header=f'<{elsewhere}>; rel="next"',
                total_count=None,
            )
    pager = Pager(BASE, limit=2, link_prefixes=(root,))
    same = pager.next_page_url(
        pager.first_page_url(),
        ["a", "b"],
        link_header='<users?cursor=2>; rel="next"',
        total_count=None,
    )
    assert same == "http://sis.test/ims/oneroster/rostering/v1p2/users?cursor=2"
