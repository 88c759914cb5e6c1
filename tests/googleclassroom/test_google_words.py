"""Google's own words go into the sentences people read (job reports, pages, logs): a broken
or hostile server's message must come out short and without credentials."""

from __future__ import annotations

import json

from sislink.googleclassroom.errors import GOOGLE_WORDS_MAX, ServerError, error_from_answer


def _answer(message: str, code: int = 500, status: str = "INTERNAL") -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "status": status}}).encode()


def test_a_huge_message_from_google_is_cut_in_the_sentence() -> None:
    page = "<html><body>" + "x" * 30_000 + "</body></html>"
    error = error_from_answer("courses.students.list", 500, _answer(page), tries=5)
    assert isinstance(error, ServerError)
    assert len(error.google_message) <= GOOGLE_WORDS_MAX + 10
    assert "(cut)" in error.google_message
    assert len(str(error)) < GOOGLE_WORDS_MAX + 300


def test_a_token_in_googles_message_is_masked() -> None:
    message = (
        "Backend failed for https://classroom.googleapis.com/v1/courses?access_token=ya29.SECRETVALUE"
        " with Authorization: Bearer ya29.OTHERSECRET and key=AIzaSECRETKEY"
    )
    error = error_from_answer("courses.get", 503, _answer(message, 503, "UNAVAILABLE"), tries=5)
    text = str(error)
    for secret in ("ya29.SECRETVALUE", "ya29.OTHERSECRET", "AIzaSECRETKEY"):
        assert secret not in text
        assert secret not in error.google_message
    assert "access_token=***" in text


def test_an_ordinary_message_is_kept_as_google_wrote_it() -> None:
    message = "@CourseNotModifiable The course is archived and cannot be modified."
    error = error_from_answer(
        "courses.students.create", 400, _answer(message, 400, "FAILED_PRECONDITION")
    )
    assert message in error.google_message
