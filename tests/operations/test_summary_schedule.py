"""The morning summary sent by `sislink serve`'s scheduler: once a day at its hour in the
school's time zone, by one process of several; what ran since the last summary (remembered in
the database), nothing when nothing happened; a failed send tried again later. Received by a
local SMTP server (aiosmtpd). The scheduler's tick is called with a given `now`: no sleeping."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from operations.smtp_inbox import Inbox, body_of, free_port, running_inbox
from sislink.classroom import Actor, Classroom, open_classroom
from sislink.classroom.models import Job, JobStatus, OperatorSummary
from sislink.classroom.services import jobs as job_service
from sislink.cli import app
from sislink.jobs.runner import JobOutcome
from sislink.jobs.schedule import tick
from sislink.operations.summary import (
    DAILY,
    SmtpSettings,
    SummaryNotConfigured,
    SummaryTime,
    alert_hold_if_configured,
    daily_summary_tick,
    last_covered,
    send_hold_alert,
)

CHICAGO = ZoneInfo("America/Chicago")
CONSOLE = "https://sislink.district.example"


@pytest.fixture
def inbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    """A local SMTP server, and the environment `sislink serve` would have: SMTP set, the
    summary at 06:30 in Chicago."""
    with running_inbox() as (handler, port):
        for name, value in {
            "SISLINK_SMTP_HOST": "127.0.0.1",
            "SISLINK_SMTP_PORT": str(port),
            "SISLINK_SUMMARY_FROM": "sislink@district.example",
            "SISLINK_SUMMARY_TO": "it@district.example",
            "SISLINK_CONSOLE_URL": CONSOLE,
            "SISLINK_SUMMARY_HOUR": "06:30",
            "SISLINK_TIME_ZONE": "America/Chicago",
        }.items():
            monkeypatch.setenv(name, value)
        yield handler


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def at_chicago(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment of March 2026 in Chicago (after the change to summer time on the 8th)."""
    return datetime(2026, 3, day, hour, minute, tzinfo=CHICAGO)


def ended_job(
    classroom: Classroom,
    kind: str,
    status: JobStatus,
    finished_at: datetime,
    report: dict[str, Any] | None = None,
) -> int:
    """A job that ended as `status` at `finished_at`."""
    with classroom.transaction() as session:
        job = job_service.queue_job(session, Actor.system(), kind, lock_key=f"t-{finished_at}")
        session.flush()
        job_service.start_job(session, job.id)
        job_service.finish_job(session, job.id, status, report or {})
        job_id = job.id
    with classroom.transaction() as session:
        session.execute(update(Job).where(Job.id == job_id).values(finished_at=finished_at))
    return job_id


def daily_rows(classroom: Classroom) -> list[OperatorSummary]:
    with classroom.session() as session:
        rows = session.scalars(
            select(OperatorSummary)
            .where(OperatorSummary.kind == DAILY)
            .order_by(OperatorSummary.day)
        ).all()
        session.expunge_all()
        return list(rows)


async def no_import(_classroom: Classroom) -> JobOutcome:
    raise AssertionError("no roster import is due without a connection")


@pytest.mark.anyio
async def test_the_scheduler_sends_the_morning_summary_once_at_its_hour(
    classroom: Classroom, inbox: Inbox
) -> None:
    failed = ended_job(
        classroom,
        "mark_export",
        JobStatus.FAILED,
        at_chicago(10, 2),
        {"error": "The SIS refused the connection's credentials; authorise again."},
    )
    imported = ended_job(classroom, "roster_import", JobStatus.SUCCEEDED, at_chicago(10, 3))

    await tick(classroom, no_import, now=at_chicago(10, 6, 29))
    assert inbox.received == []  # not yet: 06:29 in Chicago (11:29 UTC)

    await tick(classroom, no_import, now=at_chicago(10, 6, 30))
    (received,) = inbox.received
    assert received["Subject"] == "sislink: 1 job(s) need you"
    body = body_of(received)
    assert f"Mark export (one class) (job {failed}) at 2026-03-10 02:00 CDT failed" in body  # the school's time
    assert "authorise again." in body
    assert f"{CONSOLE}/admin/roster/jobs/{imported}" in body

    await tick(classroom, no_import, now=at_chicago(10, 6, 31))
    await tick(classroom, no_import, now=at_chicago(10, 23, 59))
    assert len(inbox.received) == 1  # once that day
    (row,) = daily_rows(classroom)
    assert row.day is not None and row.day.isoformat() == "2026-03-10"
    assert row.outcome == "sent" and row.covered_until == at_chicago(10, 6, 30)


def test_of_two_processes_at_the_same_minute_one_sends(
    database_url: str, classroom: Classroom, inbox: Inbox
) -> None:
    ended_job(classroom, "roster_import", JobStatus.SUCCEEDED, at_chicago(11, 1))
    other = open_classroom(database_url, secret_box=classroom.secret_box)  # another process
    start = threading.Barrier(2)
    runs: list[object] = []

    def serve(which: Classroom) -> None:
        start.wait()
        runs.append(daily_summary_tick(which, now=at_chicago(11, 6, 30)))

    try:
        threads = [threading.Thread(target=serve, args=(c,)) for c in (classroom, other)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        other.close()
    assert len(inbox.received) == 1
    assert sorted(run is None for run in runs) == [False, True]
    assert [row.outcome for row in daily_rows(classroom)] == ["sent"]


def test_each_summary_tells_what_ran_since_the_last_and_nothing_is_sent_when_nothing_did(
    classroom: Classroom, inbox: Inbox
) -> None:
    first = ended_job(classroom, "roster_import", JobStatus.SUCCEEDED, at_chicago(11, 20))
    daily_summary_tick(classroom, now=at_chicago(12, 6, 30))
    assert f"(job {first})" in body_of(inbox.received[-1])
    # The first summary covers the last 24 hours.
    assert "since 2026-03-11 06:30 CDT" in body_of(inbox.received[-1])

    second = ended_job(classroom, "roster_import", JobStatus.SUCCEEDED, at_chicago(12, 9))
    daily_summary_tick(classroom, now=at_chicago(13, 6, 30))
    told = body_of(inbox.received[-1])
    assert f"(job {second})" in told and f"(job {first})" not in told
    assert "since 2026-03-12 06:30 CDT" in told  # the last summary, remembered

    daily_summary_tick(classroom, now=at_chicago(14, 6, 30))  # nothing ran since
    assert len(inbox.received) == 2
    assert [row.outcome for row in daily_rows(classroom)] == ["sent", "sent", "nothing"]
    assert last_covered(classroom) == at_chicago(14, 6, 30)

    third = ended_job(classroom, "mark_export", JobStatus.SUCCEEDED, at_chicago(14, 8))
    daily_summary_tick(classroom, now=at_chicago(15, 6, 30))
    told = body_of(inbox.received[-1])
    assert f"(job {third})" in told and f"(job {second})" not in told
    assert "since 2026-03-14 06:30 CDT" in told  # the quiet day counts as a summary


def test_asked_for_summaries_start_from_the_last_and_become_it(
    database_url: str,
    classroom: Classroom,
    inbox: Inbox,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("SISLINK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SISLINK_DATABASE_URL", database_url)
    ended_job(classroom, "roster_import", JobStatus.SUCCEEDED, at_chicago(16, 2))
    daily_summary_tick(classroom, now=at_chicago(16, 6, 30))
    assert len(inbox.received) == 1
    runner = CliRunner()

    quiet = runner.invoke(app, ["summary", "send"])  # nothing since the morning's summary
    assert quiet.exit_code == 0, quiet.output
    assert "no e-mail sent" in quiet.output
    assert len(inbox.received) == 1
    asked = last_covered(classroom)
    assert asked is not None and asked > at_chicago(16, 6, 30)  # it became the last summary

    forced = runner.invoke(app, ["summary", "send", "--always"])
    assert forced.exit_code == 0, forced.output
    assert inbox.received[-1]["Subject"] == "sislink: nothing ran"
    assert f"since {asked.astimezone(CHICAGO):%Y-%m-%d %H:%M %Z}" in body_of(inbox.received[-1])

    remembered = last_covered(classroom)
    assert remembered is not None and remembered > asked

    window = runner.invoke(app, ["summary", "send", "--hours", "24", "--always"])
    assert window.exit_code == 0, window.output
    assert len(inbox.received) == 3
    assert last_covered(classroom) == remembered  # a window of one's choice is not remembered


def test_a_failed_send_is_tried_again_later_the_same_day(
    classroom: Classroom, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    ended_job(classroom, "roster_import", JobStatus.SUCCEEDED, at_chicago(17, 2))
    port = os.environ["SISLINK_SMTP_PORT"]
    monkeypatch.setenv("SISLINK_SMTP_PORT", str(free_port()))  # nobody listens there
    failed = daily_summary_tick(classroom, now=at_chicago(17, 6, 30))
    assert failed is not None and failed.outcome == "failed"
    assert failed.error is not None and "SISLINK_SMTP_" in failed.error

    monkeypatch.setenv("SISLINK_SMTP_PORT", port)
    assert daily_summary_tick(classroom, now=at_chicago(17, 6, 40)) is None  # too soon
    sent = daily_summary_tick(classroom, now=at_chicago(17, 6, 46))
    assert sent is not None and sent.outcome == "sent"
    assert len(inbox.received) == 1
    (row,) = daily_rows(classroom)
    assert row.attempts == 2 and row.error is None


def test_the_summary_hour_and_zone_are_read_in_words() -> None:
    when = SummaryTime.from_env({"SISLINK_SUMMARY_HOUR": "7", "SISLINK_TIME_ZONE": "Asia/Tokyo"})
    assert when.at == time(7, 0)
    assert when.due_day(datetime(2026, 3, 1, 21, 59, tzinfo=UTC)) is None  # 06:59 in Tokyo
    assert str(when.due_day(datetime(2026, 3, 1, 22, 0, tzinfo=UTC))) == "2026-03-02"
    assert SummaryTime.from_env({}).at == time(6, 0)
    assert SummaryTime.from_env({"SISLINK_SUMMARY_HOUR": "off"}).due_day(datetime.now(UTC)) is None
    with pytest.raises(SummaryNotConfigured, match="SISLINK_SUMMARY_HOUR is '25:00'"):
        SummaryTime.from_env({"SISLINK_SUMMARY_HOUR": "25:00"})
    with pytest.raises(SummaryNotConfigured, match="SISLINK_TIME_ZONE is 'Mars/Base'"):
        SummaryTime.from_env({"SISLINK_TIME_ZONE": "Mars/Base"})


def test_no_summary_without_smtp_settings(
    classroom: Classroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SISLINK_SMTP_HOST", raising=False)
    ended_job(classroom, "roster_import", JobStatus.FAILED, at_chicago(18, 2))
    assert daily_summary_tick(classroom, now=at_chicago(18, 7)) is None
    assert daily_rows(classroom) == []


def test_a_hold_alert_that_failed_is_sent_again_by_the_scheduler(
    classroom: Classroom, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    with classroom.transaction() as session:
        job = job_service.queue_job(session, Actor.system(), "google_roster", lock_key="g-1")
        session.flush()
        job_service.start_job(session, job.id)
        job_service.hold_job(session, job.id, "it would remove 30 students from courses", {})
        held = job.id
    port = os.environ["SISLINK_SMTP_PORT"]
    monkeypatch.setenv("SISLINK_SMTP_PORT", str(free_port()))  # nobody listens there
    with pytest.raises(OSError):
        send_hold_alert(classroom, SmtpSettings.from_env(), held, now=at_chicago(19, 1))

    monkeypatch.setenv("SISLINK_SMTP_PORT", port)
    daily_summary_tick(classroom, now=at_chicago(19, 1, 10))  # too soon to try again
    assert inbox.received == []
    daily_summary_tick(classroom, now=at_chicago(19, 1, 16))
    (received,) = inbox.received
    assert received["Subject"] == f"sislink: google roster (job {held}) is on hold for your review"
    body = body_of(received)
    assert "Why: it would remove 30 students from courses" in body
    assert f"{CONSOLE}/admin/google" in body
    daily_summary_tick(classroom, now=at_chicago(19, 2))
    assert len(inbox.received) == 1  # sent: not again


def test_the_summary_hour_across_daylight_saving_changes() -> None:
    """Chicago, 2026: on 8 March 02:00 becomes 03:00 (02:30 never comes: the summary is due from
    03:00); on 1 November 01:00-02:00 comes twice (due from the first 01:30; the day's row in
    operator_summary keeps it to one e-mail)."""
    chicago = ZoneInfo("America/Chicago")
    spring = SummaryTime(time(2, 30), chicago)
    assert spring.due_day(datetime(2026, 3, 8, 7, 59, tzinfo=UTC)) is None  # 01:59 CST
    assert str(spring.due_day(datetime(2026, 3, 8, 8, 0, tzinfo=UTC))) == "2026-03-08"  # 03:00
    autumn = SummaryTime(time(1, 30), chicago)
    assert autumn.due_day(datetime(2026, 11, 1, 6, 29, tzinfo=UTC)) is None  # 01:29 CDT
    assert str(autumn.due_day(datetime(2026, 11, 1, 6, 30, tzinfo=UTC))) == "2026-11-01"
    assert str(autumn.due_day(datetime(2026, 11, 1, 7, 30, tzinfo=UTC))) == "2026-11-01"  # CST
    assert str(autumn.due_day(datetime(2026, 11, 2, 5, 59, tzinfo=UTC))) == "2026-11-01"
    assert autumn.due_day(datetime(2026, 11, 2, 6, 0, tzinfo=UTC)) is None  # 00:00 CST, 2 Nov


def test_a_hold_nobody_alerted_is_alerted_by_the_scheduler_once(
    classroom: Classroom, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A roster import held by a process without the SMTP settings (a Celery worker started
    without them) sent no alert: `sislink serve`'s scheduler, which has them, sends it at its
    next minute, once."""
    with monkeypatch.context() as worker:
        worker.delenv("SISLINK_SMTP_HOST")
        with classroom.transaction() as session:
            job = job_service.queue_job(session, Actor.system(), "roster_import", lock_key="r-9")
            session.flush()
            job_service.start_job(session, job.id)
            job_service.hold_job(session, job.id, "it would deactivate 40% of students", {})
            held = job.id
        assert alert_hold_if_configured(classroom, held) is None  # the worker's try: no SMTP
    daily_summary_tick(classroom, now=at_chicago(20, 1))
    (received,) = inbox.received
    assert received["Subject"] == f"sislink: roster import (job {held}) is on hold for your review"
    assert f"{CONSOLE}/admin/roster/jobs/{held}" in body_of(received)
    daily_summary_tick(classroom, now=at_chicago(20, 1, 1))
    daily_summary_tick(classroom, now=at_chicago(20, 3))
    assert len(inbox.received) == 1
