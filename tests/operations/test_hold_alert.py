"""The e-mail sent at once when a job is put on hold (the job runner's common end, so any kind
that holds): a real roster import from the built-in SIS held by its shrink guard, received by
a local SMTP server (aiosmtpd); an SMTP server that is away never fails the job."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from operations.smtp_inbox import Inbox, body_of, free_port, running_inbox
from sislink.classroom import Actor, Classroom
from sislink.classroom.models import JobStatus, OperatorSummary
from sislink.jobs.roster import run_roster_import
from sislink.oneroster.provider.server import running_provider
from sislink.operations.summary import HOLD, alert_hold_if_configured
from sislink.sync.roster_holds import discard_hold
from sync.mark_export_world import connect_classroom

KNOWN_SECRET = "Zq7-hold-alert-sis-secret-4417"
CONSOLE = "https://sislink.district.example"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    with running_inbox() as running:
        yield running


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def hold_rows(classroom: Classroom) -> list[tuple[int | None, str, int]]:
    with classroom.session() as session:
        return [
            (row.job_id, row.outcome, row.attempts)
            for row in session.scalars(
                select(OperatorSummary)
                .where(OperatorSummary.kind == HOLD)
                .order_by(OperatorSummary.id)
            )
        ]


@pytest.mark.anyio
async def test_a_held_roster_import_is_told_at_once_and_an_smtp_server_away_never_fails_it(
    classroom: Classroom,
    inbox: tuple[Inbox, int],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler, port = inbox
    monkeypatch.setenv("SISLINK_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SISLINK_SMTP_PORT", str(free_port()))  # nobody listens there yet
    monkeypatch.setenv("SISLINK_SUMMARY_TO", "it@district.example")
    monkeypatch.setenv("SISLINK_CONSOLE_URL", CONSOLE)
    caplog.set_level(logging.INFO)
    with running_provider(profile="generic-1.2", students=60, client_secret=KNOWN_SECRET) as sis:
        connect_classroom(sis, classroom)
        first = await run_roster_import(classroom, Actor.system())
        assert first.status is JobStatus.SUCCEEDED
        enrolments = [e["sourcedId"] for e in sis.store.iter_all("enrollment")]
        for sid in enrolments[: len(enrolments) // 2]:
            sis.store.delete("enrollment", sid)

        unsent = await run_roster_import(classroom, Actor.system(), full=True)
        assert unsent.status is JobStatus.ON_HOLD  # the job is held whatever the mail does
        assert handler.received == []
        assert f"the hold alert of job {unsent.job_id} was not sent" in caplog.text
        assert hold_rows(classroom) == [(unsent.job_id, "failed", 1)]

        discard_hold(classroom, unsent.job_id, Actor.system())
        monkeypatch.setenv("SISLINK_SMTP_PORT", str(port))
        held = await run_roster_import(classroom, Actor.system(), full=True)

    assert held.status is JobStatus.ON_HOLD
    (received,) = handler.received
    assert received["To"] == "it@district.example"
    assert received["Subject"] == (
        f"sislink: roster import (job {held.job_id}) is on hold for your review"
    )
    body = body_of(received)
    assert f"Why: {held.error}" in body and held.error
    deactivating = held.report["deactivations"]["enrolments"]
    assert f"It would deactivate {len(deactivating)} enrolments" in body
    assert f"Review it, then approve or discard it: {CONSOLE}/admin/roster/jobs/{held.job_id}" in (
        body
    )
    assert KNOWN_SECRET not in received.as_string() and KNOWN_SECRET not in caplog.text
    assert (
        f"hold alert sent to it@district.example: 'sislink: roster import (job {held.job_id})"
        in caplog.text
    )

    # Once per job, whichever process asks again.
    assert alert_hold_if_configured(classroom, held.job_id) is None
    assert len(handler.received) == 1
    assert hold_rows(classroom) == [(unsent.job_id, "failed", 1), (held.job_id, "sent", 1)]
