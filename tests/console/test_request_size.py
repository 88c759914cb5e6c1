"""Anyone can reach the sign-in form and the REST API: what they send is bounded before the
CSRF token, the sign-in or the API token is looked at (a signed-out stranger's huge form, file
or JSON is refused, not read into memory or spooled to disk)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from console.console_world import ADMIN_EMAIL, Console, console
from sislink.console.app import MAX_REQUEST_BYTES
from sislink.console.pages.class_actions import MAX_SHEET_BYTES

CHUNK = b"x" * 65536


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Console]:
    with console(tmp_path) as found:
        yield found


def _chunks(total: int) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield CHUNK
        sent += len(CHUNK)


def test_a_strangers_huge_upload_to_the_sign_in_form_is_refused(served: Console) -> None:
    stranger = served.client().client
    answer = stranger.post(
        "/login",
        data={"email": "x@example.org", "password": "x"},
        files={"anything": ("big.bin", b"x" * (MAX_REQUEST_BYTES + 1))},
    )
    assert answer.status_code == 413


def test_a_strangers_huge_form_is_refused_even_without_a_length(served: Console) -> None:
    stranger = served.client().client
    answer = stranger.post(
        "/language",
        content=(b"padding=" + chunk for chunk in _chunks(MAX_REQUEST_BYTES + 1)),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 413


def test_a_huge_json_body_without_a_token_is_refused(served: Console) -> None:
    stranger = served.client().client
    big = b'{"title": "' + b"x" * (MAX_REQUEST_BYTES + 1) + b'"}'
    answer = stranger.post(
        "/api/teacher/classes/1/coursework",
        content=big,
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 413
    streamed = stranger.post(
        "/api/admin/roster/imports",
        content=iter([big]),
        headers={"Content-Type": "application/json"},
    )
    assert streamed.status_code == 413


def test_a_gradebook_sheet_at_its_largest_still_fits_a_request() -> None:
    # The sheet's own limit answers in a sentence on its page, before the request's does.
    assert MAX_SHEET_BYTES + 64 * 1024 < MAX_REQUEST_BYTES


@pytest.mark.parametrize("number", ["3000000000", "99999999999999999999", "9" * 5000])
def test_a_number_in_a_pages_address_past_any_id_is_a_404_page(
    served: Console, number: str
) -> None:
    """SQLite takes no number past 64 bits and PostgreSQL's ids are 32-bit: such a number,
    guessed or mistyped in an address, names nothing (it was a 500)."""
    admin = served.client()
    admin.sign_in(ADMIN_EMAIL)
    for url in (
        f"/classes/{number}",
        f"/classes/{number}/gradebook",
        f"/classes/1/reports/{number}",
        f"/classes/exports/{number}",
        f"/admin/people/{number}",
        f"/admin/roster/jobs/{number}",
        f"/admin/roster/holds/{number}/approve",
    ):
        answer = admin.get(url)
        assert answer.status_code == 404, url
        assert "it may have been deleted" in answer.text or "no " in answer.text, url
    cancel = admin.post(f"/admin/jobs/{number}/cancel", {})
    assert cancel.status_code == 404


@pytest.mark.parametrize("number", ["3000000000", "99999999999999999999", "²", "0"])
def test_a_number_in_a_query_that_no_row_can_have_shows_the_first_page(
    served: Console, number: str
) -> None:
    """A keyset (`after_id`, `before`) past any id, or not plain digits, as a link never
    makes it: the list's first page, not a 500 (SQLite's OverflowError, PostgreSQL's integer
    out of range, int() refusing '²')."""
    admin = served.client()
    admin.sign_in(ADMIN_EMAIL)
    for url in (
        f"/admin/people?after=a&after_id={number}",
        f"/admin/classes?after=a&after_id={number}",
        f"/admin/activity?before={number}",
    ):
        answer = admin.get(url)
        assert answer.status_code == 200, (url, answer.status_code)
