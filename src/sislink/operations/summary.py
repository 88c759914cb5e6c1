"""The summary e-mail to administrators: what ran since a time, what failed or needs attention
or waits on hold, in words, with links to the console's pages; nothing is sent when nothing
happened (unless asked).

SMTP settings come from the environment (`SmtpSettings.from_env`); without SISLINK_SMTP_HOST
no e-mail is sent. `sislink summary send` sends it (run it from cron each morning).
"""

from __future__ import annotations

import os
import smtplib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from sqlalchemy import or_, select

from sislink.classroom import Classroom
from sislink.classroom.models import Job, JobStatus
from sislink.operations.logs import redact

DEFAULT_SMTP_PORT = 25
SMTP_TIMEOUT_S = 30.0
KIND_NAMES = {
    "roster_import": "Roster import",
    "mark_export": "Mark export (one class)",
    "mark_export_all": "Mark export (every class)",
}
STATUS_WORDS = {
    JobStatus.SUCCEEDED: "succeeded",
    JobStatus.NEEDS_ATTENTION: "finished, but needs attention",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELLED: "was cancelled",
    JobStatus.ON_HOLD: "is on hold for your review",
}
NOT_OK = (JobStatus.FAILED, JobStatus.NEEDS_ATTENTION, JobStatus.ON_HOLD)


class SummaryNotConfigured(Exception):
    """SMTP or the recipients are not set: says which variable to set."""


@dataclass(frozen=True)
class SmtpSettings:
    """Where the summary goes and through which server (SISLINK_SMTP_*, SISLINK_SUMMARY_*)."""

    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    console_url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SmtpSettings:
        """SISLINK_SMTP_HOST, _PORT (25), _USERNAME, _PASSWORD, _STARTTLS (1 for STARTTLS);
        SISLINK_SUMMARY_FROM, SISLINK_SUMMARY_TO (comma-separated), SISLINK_CONSOLE_URL."""
        env = os.environ if environ is None else environ
        host = env.get("SISLINK_SMTP_HOST", "").strip()
        if not host:
            raise SummaryNotConfigured(
                "No SMTP server is set: set SISLINK_SMTP_HOST (and SISLINK_SMTP_PORT, "
                "SISLINK_SUMMARY_FROM, SISLINK_SUMMARY_TO) to send the summary."
            )
        recipients = tuple(
            r.strip() for r in env.get("SISLINK_SUMMARY_TO", "").split(",") if r.strip()
        )
        if not recipients:
            raise SummaryNotConfigured(
                "Nobody to send the summary to: set SISLINK_SUMMARY_TO to the administrators' "
                "addresses, separated by commas."
            )
        port_text = env.get("SISLINK_SMTP_PORT", "").strip() or str(DEFAULT_SMTP_PORT)
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise SummaryNotConfigured(
                f"SISLINK_SMTP_PORT is {port_text!r}; give a port number (25, 587, ...)."
            )
        return cls(
            host=host,
            port=int(port_text),
            sender=env.get("SISLINK_SUMMARY_FROM", "").strip() or f"sislink@{host}",
            recipients=recipients,
            console_url=(
                env.get("SISLINK_CONSOLE_URL", "").strip() or "http://127.0.0.1:8000"
            ).rstrip("/"),
            username=env.get("SISLINK_SMTP_USERNAME") or None,
            password=env.get("SISLINK_SMTP_PASSWORD") or None,
            starttls=env.get("SISLINK_SMTP_STARTTLS", "").strip().lower() in ("1", "true", "yes"),
        )


@dataclass(frozen=True)
class JobLine:
    """One job as the summary tells it."""

    job_id: int
    kind: str
    status: JobStatus
    when: datetime | None
    said: str  # the error, the hold's reason, or the first reasons it needs attention

    def in_words(self, console_url: str) -> str:
        name = KIND_NAMES.get(self.kind, self.kind.replace("_", " ").capitalize())
        when = f" at {self.when.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if self.when else ""
        text = f"- {name} (job {self.job_id}){when} {STATUS_WORDS.get(self.status, self.status)}"
        if self.said:
            text += f": {self.said}"
        return f"{text}\n  {console_url}{page_of(self)}"


def page_of(line: JobLine) -> str:
    """The console page that shows this job."""
    if line.kind == "roster_import":
        return f"/admin/roster/jobs/{line.job_id}"
    return "/admin/activity"


def _said(job: Job) -> str:
    report: dict[str, Any] = dict(job.report or {})
    if job.status == JobStatus.ON_HOLD:
        return redact(job.progress_message or str(report.get("hold_reason") or ""))
    if report.get("error"):
        return redact(str(report["error"]))
    attention = report.get("attention")
    if isinstance(attention, Mapping):
        reasons = [str(r) for r in attention.get("reasons") or []][:3]
        return redact(f"{attention.get('count', 0)} not done ({'; '.join(reasons)})")
    return ""


def jobs_since(classroom: Classroom, since: datetime) -> list[JobLine]:
    """The jobs that ended since `since`, and every job on hold (however old), oldest first."""
    with classroom.session() as session:
        found = session.scalars(
            select(Job)
            .where(or_(Job.finished_at >= since, Job.status == JobStatus.ON_HOLD))
            .order_by(Job.id)
        ).all()
        return [
            JobLine(
                job.id,
                job.kind,
                JobStatus(job.status),
                job.finished_at or job.started_at,
                _said(job),
            )
            for job in found
            if job.status not in (JobStatus.QUEUED, JobStatus.RUNNING)
        ]


def compose_summary(
    lines: Sequence[JobLine],
    settings: SmtpSettings,
    *,
    since: datetime,
    always: bool = False,
) -> EmailMessage | None:
    """The e-mail, or None when nothing happened and `always` is False."""
    if not lines and not always:
        return None
    problems = [line for line in lines if line.status in NOT_OK]
    fine = [line for line in lines if line.status not in NOT_OK]
    counts = Counter(line.status for line in lines)
    if problems:
        subject = f"sislink: {len(problems)} job(s) need you"
    elif lines:
        subject = f"sislink: {len(lines)} job(s) ran, all fine"
    else:
        subject = "sislink: nothing ran"
    parts = [f"What sislink did since {since.astimezone(UTC):%Y-%m-%d %H:%M} UTC."]
    if not lines:
        parts.append("Nothing ran, and nothing is on hold.")
    else:
        parts.append(
            ", ".join(f"{n} {STATUS_WORDS.get(status, status)}" for status, n in counts.items())
            + "."
        )
    if problems:
        parts.append("Needs you:\n" + "\n".join(p.in_words(settings.console_url) for p in problems))
    if fine:
        parts.append("Ran:\n" + "\n".join(f.in_words(settings.console_url) for f in fine))
    parts.append(f"Everything sislink did: {settings.console_url}/admin/activity")
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.sender
    message["To"] = ", ".join(settings.recipients)
    message.set_content("\n\n".join(parts) + "\n")
    return message


def send_summary(
    classroom: Classroom,
    settings: SmtpSettings,
    *,
    since: datetime,
    always: bool = False,
) -> EmailMessage | None:
    """Compose the summary of what happened since `since` and send it; None when nothing
    happened (and not `always`): then nothing is sent."""
    message = compose_summary(jobs_since(classroom, since), settings, since=since, always=always)
    if message is None:
        return None
    with smtplib.SMTP(settings.host, settings.port, timeout=SMTP_TIMEOUT_S) as smtp:
        if settings.starttls:
            smtp.starttls()
        if settings.username and settings.password:
            smtp.login(settings.username, settings.password)
        smtp.send_message(message)
    return message
