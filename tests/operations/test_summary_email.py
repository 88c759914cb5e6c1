"""The summary e-mail, received by a local SMTP server (aiosmtpd): what ran and what failed, in
words, with links to the console; no e-mail when nothing happened, unless asked."""

from __future__ import annotations

import email
import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from typer.testing import CliRunner

from console.console_world import ADMIN_EMAIL, console
from sislink.classroom import Actor, Classroom
from sislink.classroom.models import JobStatus
from sislink.classroom.services import classes as classes_service
from sislink.classroom.services import jobs as job_service
from sislink.cli import app
from sislink.jobs.roster import run_roster_import
from sislink.oneroster.provider.server import running_provider
from sislink.operations.summary import SmtpSettings, send_summary
from sync.mark_export_world import connect_classroom

KNOWN_SECRET = "Zq7-summary-sis-secret-9021"
CONSOLE = "https://sislink.district.example"


class Inbox:
    """An aiosmtpd handler that keeps what it receives."""

    def __init__(self) -> None:
        self.received: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(email.message_from_bytes(envelope.original_content))
        return "250 OK"


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def settings_for(port: int) -> SmtpSettings:
    return SmtpSettings.from_env(
        {
            "SISLINK_SMTP_HOST": "127.0.0.1",
            "SISLINK_SMTP_PORT": str(port),
            "SISLINK_SUMMARY_FROM": "sislink@district.example",
            "SISLINK_SUMMARY_TO": "it@district.example, ada@district.example",
            "SISLINK_CONSOLE_URL": CONSOLE + "/",
        }
    )


def body_of(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_the_summary_tells_what_ran_and_what_failed_with_links(
    classroom: Classroom, inbox: tuple[Inbox, int]
) -> None:
    handler, port = inbox
    since = datetime.now(UTC) - timedelta(hours=1)
    with running_provider(profile="generic-1.2", students=40, client_secret=KNOWN_SECRET) as sis:
        connect_classroom(sis, classroom)
        imported = await run_roster_import(classroom, Actor.system())
    with classroom.transaction() as session:
        failed = job_service.queue_job(session, Actor.system(), "mark_export", lock_key="c-9")
        session.flush()
        job_service.start_job(session, failed.id)
        job_service.finish_job(
            session,
            failed.id,
            JobStatus.FAILED,
            {"error": "The SIS refused the connection's credentials; authorise again."},
        )

    sent = send_summary(classroom, settings_for(port), since=since)

    assert sent is not None
    (received,) = handler.received
    assert received["To"] == "it@district.example, ada@district.example"
    assert received["Subject"] == "sislink: 1 job(s) need you"
    body = body_of(received)
    assert f"Mark export (one class) (job {failed.id})" in body
    assert "failed: The SIS refused the connection's credentials; authorise again." in body
    assert f"Roster import (job {imported.job_id})" in body
    assert f"{CONSOLE}/admin/roster/jobs/{imported.job_id}" in body
    assert f"{CONSOLE}/admin/activity" in body
    assert body.index("Needs you:") < body.index("Ran:")
    assert KNOWN_SECRET not in received.as_string()


def test_no_email_when_nothing_happened_unless_asked(
    classroom: Classroom, inbox: tuple[Inbox, int]
) -> None:
    handler, port = inbox
    since = datetime.now(UTC) - timedelta(hours=24)
    assert send_summary(classroom, settings_for(port), since=since) is None
    assert handler.received == []

    sent = send_summary(classroom, settings_for(port), since=since, always=True)
    assert sent is not None
    (received,) = handler.received
    assert received["Subject"] == "sislink: nothing ran"
    assert "Nothing ran, and nothing is on hold." in body_of(received)


def test_a_job_on_hold_is_told_however_old(classroom: Classroom, inbox: tuple[Inbox, int]) -> None:
    handler, port = inbox
    with classroom.transaction() as session:
        held = job_service.queue_job(session, Actor.system(), "roster_import", lock_key="h-1")
        session.flush()
        job_service.start_job(session, held.id)
        job_service.hold_job(session, held.id, "it would deactivate 80% of students", {})
    send_summary(classroom, settings_for(port), since=datetime.now(UTC) + timedelta(hours=1))
    (received,) = handler.received
    body = body_of(received)
    assert "is on hold for your review: it would deactivate 80% of students" in body


def test_the_command_says_which_variable_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SISLINK_SMTP_HOST", raising=False)
    result = CliRunner().invoke(app, ["summary", "send"])
    assert result.exit_code == 1
    assert "SISLINK_SMTP_HOST" in result.output


def test_marks_in_a_jobs_reasons_stay_out_of_the_email(
    classroom: Classroom, inbox: tuple[Inbox, int]
) -> None:
    """A grade pull and a mark export need attention for reasons that quote a mark (Classroom's
    grade above the limit, a SIS answer echoing the score): the e-mail says how many and where
    to look, never the marks."""
    handler, port = inbox
    since = datetime.now(UTC) - timedelta(hours=1)
    quoted = {
        "google_grade_pull": (
            "Essay / Ann Lee (ann@district.example): The grade 14.5 of 10 in Google Classroom "
            "is above the class's extra-credit limit (1.2 times the points), so it was not "
            "taken: correct it in Classroom, or raise the limit in the class's export choices."
        ),
        "mark_export": (
            "Essay / Ann Lee (ann@district.example): the SIS refused it (422): scoreValue "
            "93.25 is above the line item's maximum"
        ),
    }
    with classroom.transaction() as session:
        for number, (kind, reason) in enumerate(quoted.items()):
            job = job_service.queue_job(session, Actor.system(), kind, lock_key=f"m-{number}")
            session.flush()
            job_service.start_job(session, job.id)
            job_service.finish_job(
                session,
                job.id,
                JobStatus.NEEDS_ATTENTION,
                {"attention": {"count": 2, "reasons": [reason, "Quiz / Bo Yi: no due date"]}},
            )

    send_summary(classroom, settings_for(port), since=since)

    (received,) = handler.received
    body = body_of(received)
    assert "14.5" not in body and "93.25" not in body
    assert body.count("finished, but needs attention: 2 items need attention") == 2
    assert f"{CONSOLE}/admin/activity" in body


def test_a_name_with_line_breaks_cannot_add_a_header_or_a_recipient(
    classroom: Classroom, inbox: tuple[Inbox, int]
) -> None:
    """A class title or a person's name is the SIS's data: with CR LF and a header in it, it
    stays in the body; the subject and the recipients are sislink's."""
    handler, port = inbox
    title = "Maths\r\nBcc: attacker@elsewhere.example\r\nSubject: pwned"
    with classroom.transaction() as session:
        held = job_service.queue_job(session, Actor.system(), "roster_import", lock_key="h-9")
        session.flush()
        job_service.start_job(session, held.id)
        job_service.hold_job(session, held.id, f"{title} would lose every student", {})
    sent = send_summary(classroom, settings_for(port), since=datetime.now(UTC))
    assert sent is not None
    (received,) = handler.received
    assert received["Bcc"] is None and received.get_all("Subject") == ["sislink: 1 job(s) need you"]
    assert "attacker@elsewhere.example" not in str(received["To"])
    assert "would lose every student" in body_of(received)


def test_each_link_opens_the_page_of_its_job_for_an_administrator(
    tmp_path: Path, inbox: tuple[Inbox, int]
) -> None:
    """Every link in the e-mail, followed by a signed-in administrator, opens a page about that
    job: a class's mark export its export page, a class's grade pull the class's page (where
    its last pull is), a roster import its job page."""
    handler, port = inbox
    with console(tmp_path) as served:
        with served.classroom.transaction() as session:
            klass = classes_service.create_class(session, Actor.system(), title="Algebra 7")
            session.flush()
            made: dict[str, int] = {}
            for kind, class_id in (
                ("mark_export", klass.id),
                ("google_grade_pull", klass.id),
                ("roster_import", None),
            ):
                job = job_service.queue_job(
                    session, Actor.system(), kind, class_id=class_id, lock_key=f"l-{kind}"
                )
                session.flush()
                job_service.start_job(session, job.id)
                job_service.finish_job(session, job.id, JobStatus.FAILED, {"error": "it stopped"})
                made[kind] = job.id
            class_id = klass.id
        send_summary(served.classroom, settings_for(port), since=datetime.now(UTC) - timedelta(1))
        (received,) = handler.received
        links = dict(
            re.findall(
                r"\(job (\d+)\)[^\n]*\n  " + re.escape(CONSOLE) + r"(\S+)", body_of(received)
            )
        )
        assert links == {
            str(made["mark_export"]): f"/classes/{class_id}/export/{made['mark_export']}",
            str(made["google_grade_pull"]): f"/classes/{class_id}",
            str(made["roster_import"]): f"/admin/roster/jobs/{made['roster_import']}",
        }
        admin = served.client()
        admin.sign_in(ADMIN_EMAIL)
        for path in links.values():
            page = admin.get(path)
            assert page.status_code == 200, path


def test_an_export_of_every_class_on_the_workers_is_told_once_not_once_per_class(
    classroom: Classroom, inbox: tuple[Inbox, int]
) -> None:
    """On the workers an export of every class is a parent job and one job per class (8,000
    in a district); the e-mail tells the parent, whose report sums its classes up, as when one
    process exports them all, not every class again (nor a failed class twice)."""
    handler, port = inbox
    since = datetime.now(UTC) - timedelta(hours=1)
    with classroom.transaction() as session:
        parent = job_service.queue_job(session, Actor.system(), "mark_export_all", lock_key="p-1")
        session.flush()
        job_service.start_job(session, parent.id)
        children = []
        for n in range(3):
            child = job_service.queue_job(session, Actor.system(), "mark_export", lock_key=f"c-{n}")
            child.params = {"class_id": n, "parent_job_id": parent.id}
            session.flush()
            job_service.start_job(session, child.id)
            children.append(child.id)
        for child_id in children[:2]:
            job_service.finish_job(session, child_id, JobStatus.SUCCEEDED, {})
        job_service.finish_job(
            session, children[2], JobStatus.FAILED, {"error": "'Biology 2': the SIS is down."}
        )
        job_service.finish_job(
            session,
            parent.id,
            JobStatus.FAILED,
            {"error": "1 of 3 classes could not be exported (the others were): 'Biology 2': "
             "the SIS is down.", "child_jobs": children},
        )  # fmt: skip

    send_summary(classroom, settings_for(port), since=since)

    (received,) = handler.received
    assert received["Subject"] == "sislink: 1 job(s) need you"
    body = body_of(received)
    assert f"Mark export (every class) (job {parent.id})" in body
    assert "1 of 3 classes could not be exported" in body
    for child_id in children:
        assert f"(job {child_id})" not in body
