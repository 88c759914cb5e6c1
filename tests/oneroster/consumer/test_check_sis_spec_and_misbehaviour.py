"""check-sis judges a SIS by what it answered: 201 to an updating PUT passes (1EdTech's OpenAPI
lists it) with a note; a SIS that ignores `limit` or `offset` fails the paging checks; a SIS
whose email filter brings back someone else fails the teacher-by-email check.

The misbehaving SIS is the built-in one behind a small ASGI wrapper (on loopback) that drops
query parameters before the SIS sees them, or rewrites the answer's emails."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sislink.oneroster.consumer import run_conformance
from sislink.oneroster.consumer.conformance import ConformanceReport
from sislink.oneroster.provider.server import running_provider


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class DropsQuery:
    """ASGI: the SIS behind it never sees the named query parameters (as if it ignored them)."""

    def __init__(self, app: Any, names: set[str]) -> None:
        self.app = app
        self.names = names

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and "/ims/oneroster/" in scope["path"]:
            query = scope.get("query_string", b"").decode()
            kept = "&".join(p for p in query.split("&") if p.split("=", 1)[0] not in self.names)
            scope = {**scope, "query_string": kept.encode()}
        await self.app(scope, receive, send)


class AnswersAnotherTeacher:
    """ASGI: a teacher filtered by email comes back with another teacher's email, as from a
    SIS that matched the filter on another field."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        query = scope.get("query_string", b"").decode() if scope["type"] == "http" else ""
        if "filter=" not in query or not scope["path"].endswith("/teachers"):
            await self.app(scope, receive, send)
            return
        body = bytearray()
        start: dict[str, Any] = {}

        async def keep(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                body.extend(message.get("body", b""))

        await self.app(scope, receive, keep)
        data = json.loads(bytes(body))
        for user in data.get("users", []):
            user["email"] = "someone.else@district.example"
        answer = json.dumps(data).encode()
        headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(answer)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": answer})


@pytest.fixture
def misbehaving(watched: Callable[..., Any]) -> Iterator[Any]:
    """A generic 1.2 built-in SIS with a Watch in front (`.sis`, `.watch`): set `.watch.app`
    to a wrapper of it to make the SIS misbehave."""
    with watched(profile="generic-1.2", students=60) as running:
        yield running


def _checks(report: ConformanceReport) -> dict[str, Any]:
    return {c.name: c for c in report.checks}


@pytest.mark.anyio
async def test_an_update_answered_201_as_the_openapi_lists_passes_with_a_note(
    connect: Callable[..., Any],
) -> None:
    with running_provider(profile="generic-1.2", students=60) as sis:
        assert sis.update_status == 201
        report = await run_conformance(connect(sis), sis.teacher_email, write_test=True)
    check = _checks(report)["line_item_put_again_updates"]
    assert check.passed is True and check.details == "updated (201)"
    assert check.note is not None and "OpenAPI" in check.note
    assert report.passed
    shown = report.as_dict()["checks"]
    assert any(c["check"] == "line_item_put_again_updates" and c["note"] for c in shown)


@pytest.mark.anyio
async def test_an_update_answered_200_passes_without_a_note(
    connect: Callable[..., Any],
) -> None:
    with running_provider(profile="infinite-campus", students=60) as sis:
        report = await run_conformance(connect(sis), sis.teacher_email, write_test=True)
    check = _checks(report)["line_item_put_again_updates"]
    assert (check.passed, check.details, check.note) == (True, "updated (200)", None)


@pytest.mark.anyio
async def test_a_sis_that_ignores_limit_does_not_pass_as_paging(
    misbehaving: Any, connect: Callable[..., Any]
) -> None:
    misbehaving.watch.app = DropsQuery(misbehaving.watch.app, {"limit"})
    report = await run_conformance(connect(misbehaving.sis), misbehaving.sis.teacher_email)
    checks = _checks(report)
    assert checks["teachers_can_be_listed"].passed is False
    assert "ignores `limit`" in checks["teachers_can_be_listed"].details
    assert checks["teachers_page_by_limit_and_offset"].passed is False
    assert not report.passed


@pytest.mark.anyio
async def test_a_sis_that_ignores_offset_does_not_pass_as_paging(
    misbehaving: Any, connect: Callable[..., Any]
) -> None:
    misbehaving.watch.app = DropsQuery(misbehaving.watch.app, {"offset"})
    report = await run_conformance(connect(misbehaving.sis), misbehaving.sis.teacher_email)
    check = _checks(report)["teachers_page_by_limit_and_offset"]
    assert check.passed is False and "ignores `offset`" in check.details
    assert _checks(report)["teachers_can_be_listed"].passed is True


@pytest.mark.anyio
async def test_the_teacher_found_by_email_must_have_that_email(
    misbehaving: Any, connect: Callable[..., Any]
) -> None:
    misbehaving.watch.app = AnswersAnotherTeacher(misbehaving.watch.app)
    report = await run_conformance(connect(misbehaving.sis), misbehaving.sis.teacher_email)
    check = _checks(report)["teacher_is_found_by_email"]
    assert check.passed is False
    assert "someone.else@district.example" in check.details and "`filter`" in check.details
    # The checks that need the teacher do not run on someone else.
    assert _checks(report)["teacher_classes_have_school_and_terms"].passed is None
