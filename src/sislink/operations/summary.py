"""The summary e-mail to administrators: what ran since the last summary, what failed or needs
attention or waits on hold, in words, with links to the console's pages; nothing is sent when
nothing happened (unless asked). And the alert sent at once when a job is put on hold.

SMTP settings come from the environment (`SmtpSettings.from_env`); without SISLINK_SMTP_HOST
and SISLINK_SUMMARY_TO no e-mail is sent. Once they are set:
- the morning summary: `sislink serve`'s scheduler calls `daily_summary_tick` every minute; at
  SISLINK_SUMMARY_HOUR (06:00 by default; "off" to stop it) in the school's time zone (the one
  an administrator set in the console or with `sislink time-zone`, else SISLINK_TIME_ZONE, else
  the server's own zone: `classroom.services.time_zone`) one process claims the day's row in `operator_summary` (unique by
  kind and day: of several processes one wins) and sends it. A failed send is tried again 15
  minutes later, at most 4 times that day. `sislink summary send` sends one on demand.
- the hold alert: the job runner calls `alert_hold_if_configured` when a job ends on hold (a
  roster import, a Google sync: any kind), once per job; a failure to send is logged, never
  the job's, and the scheduler tries it again 15 minutes later (`retry_hold_alerts`); a job
  held by a process without the SMTP settings is alerted by the scheduler at its next minute.
- the memory: each summary (the morning one, or one asked for without --hours) records what
  it covered, so the next one tells what ran since; the first covers the last 24 hours.
"""

from __future__ import annotations

import logging
import os
import re
import smtplib
import ssl
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from sislink.classroom import Classroom
from sislink.classroom.models import Job, JobStatus, OperatorSummary
from sislink.classroom.services.jobs import PARENT_JOB, this_process
from sislink.classroom.services.time_zone import FROM_SERVER, school_time_zone
from sislink.operations.logs import redact

logger = logging.getLogger("sislink.operations.summary")

DEFAULT_SMTP_PORT = 25
DEFAULT_SMTPS_PORT = 465  # TLS from the first byte (SISLINK_SMTP_TLS)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
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
# The kinds whose reasons for needing attention are about people and classes, never marks: the
# e-mail quotes them. Every other kind's (mark exports, grade pulls) are counted, not quoted.
REASONS_WITHOUT_MARKS = frozenset({"roster_import", "google_roster_sync"})


class SummaryNotConfigured(Exception):
    """SMTP or the recipients are not set, or set wrong: says which variable to set."""


class SmtpNotSet(SummaryNotConfigured):
    """No SMTP server or nobody to send to: no e-mail, quietly (as documented)."""


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
    tls: bool = False  # TLS from the first byte (SMTPS, port 465)
    ca_file: str | None = None  # the authorities to trust instead of the system's

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SmtpSettings:
        """SISLINK_SMTP_HOST, _PORT (25; 465 with _TLS), _USERNAME, _PASSWORD, _STARTTLS (1 for
        STARTTLS), _TLS (1 for TLS from the start), _CA_FILE (a PEM file of the authorities to
        trust; the system's by default); SISLINK_SUMMARY_FROM, SISLINK_SUMMARY_TO
        (comma-separated), SISLINK_CONSOLE_URL. The server's certificate is always checked; a
        password is sent only over STARTTLS or TLS, or to a server on this machine."""
        env = os.environ if environ is None else environ
        host = env.get("SISLINK_SMTP_HOST", "").strip()
        if not host:
            raise SmtpNotSet(
                "No SMTP server is set: set SISLINK_SMTP_HOST (and SISLINK_SMTP_PORT, "
                "SISLINK_SUMMARY_FROM, SISLINK_SUMMARY_TO) to send the summary."
            )
        recipients = tuple(
            r.strip() for r in env.get("SISLINK_SUMMARY_TO", "").split(",") if r.strip()
        )
        if not recipients:
            raise SmtpNotSet(
                "Nobody to send the summary to: set SISLINK_SUMMARY_TO to the administrators' "
                "addresses, separated by commas."
            )
        sender = env.get("SISLINK_SUMMARY_FROM", "").strip() or f"sislink@{host}"
        for variable, address in [("SISLINK_SUMMARY_FROM", sender)] + [
            ("SISLINK_SUMMARY_TO", r) for r in recipients
        ]:
            if "\r" in address or "\n" in address or not _ADDRESS.fullmatch(parseaddr(address)[1]):
                raise SummaryNotConfigured(
                    f"{variable} has {address!r}, which is not an e-mail address: give "
                    "addresses such as it@district.example or 'IT <it@district.example>' "
                    "(SISLINK_SUMMARY_TO: separated by commas)."
                )
        starttls = _flag(env, "SISLINK_SMTP_STARTTLS")
        tls = _flag(env, "SISLINK_SMTP_TLS")
        if starttls and tls:
            raise SummaryNotConfigured(
                "SISLINK_SMTP_STARTTLS and SISLINK_SMTP_TLS are both set: set SISLINK_SMTP_TLS "
                "for a server that speaks TLS from the start (port 465), or SISLINK_SMTP_STARTTLS "
                "for one that upgrades the connection (port 587), not both."
            )
        username = env.get("SISLINK_SMTP_USERNAME") or None
        password = env.get("SISLINK_SMTP_PASSWORD") or None
        if password and not (starttls or tls) and host.lower() not in LOOPBACK_HOSTS:
            raise SummaryNotConfigured(
                f"SISLINK_SMTP_PASSWORD is set but the connection to {host} is not encrypted, "
                "so the password would cross the network in clear: set SISLINK_SMTP_STARTTLS=1 "
                "(port 587) or SISLINK_SMTP_TLS=1 (port 465)."
            )
        ca_file = env.get("SISLINK_SMTP_CA_FILE", "").strip() or None
        if ca_file and not os.path.isfile(ca_file):
            raise SummaryNotConfigured(
                f"SISLINK_SMTP_CA_FILE is {ca_file!r}, which is not a file: give the path of a "
                "PEM file of the authorities that signed the SMTP server's certificate."
            )
        default_port = DEFAULT_SMTPS_PORT if tls else DEFAULT_SMTP_PORT
        port_text = env.get("SISLINK_SMTP_PORT", "").strip() or str(default_port)
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise SummaryNotConfigured(
                f"SISLINK_SMTP_PORT is {port_text!r}; give a port number (25, 587, ...)."
            )
        return cls(
            host=host,
            port=int(port_text),
            sender=sender,
            recipients=recipients,
            console_url=(
                env.get("SISLINK_CONSOLE_URL", "").strip() or "http://127.0.0.1:8000"
            ).rstrip("/"),
            username=username,
            password=password,
            starttls=starttls,
            tls=tls,
            ca_file=ca_file,
        )

    def tls_context(self) -> ssl.SSLContext:
        """A context that checks the server's certificate and name (smtplib's own default,
        without a context, checks neither)."""
        return ssl.create_default_context(cafile=self.ca_file)


# One address, nothing else: no spaces or line breaks (a header of its own), one @.
_ADDRESS = re.compile(r"[^\s@<>,;\"]+@[^\s@<>,;\"]+")


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class JobLine:
    """One job as the summary tells it."""

    job_id: int
    kind: str
    status: JobStatus
    when: datetime | None
    said: str  # the error, the hold's reason, or the first reasons it needs attention
    class_id: int | None = None  # the class a class's job is about

    def in_words(self, console_url: str, zone: tzinfo = UTC) -> str:
        name = KIND_NAMES.get(self.kind, self.kind.replace("_", " ").capitalize())
        when = f" at {school_time(self.when, zone)}" if self.when else ""
        text = f"- {name} (job {self.job_id}){when} {STATUS_WORDS.get(self.status, self.status)}"
        if self.said:
            text += f": {self.said}"
        return f"{text}\n  {console_url}{page_of(self)}"


def page_of(line: JobLine) -> str:
    """The console page that shows this job."""
    if line.kind == "roster_import":
        return f"/admin/roster/jobs/{line.job_id}"
    if line.class_id is not None:
        if line.kind == "mark_export":  # its progress, or its report once it ended
            return f"/classes/{line.class_id}/export/{line.job_id}"
        return f"/classes/{line.class_id}"  # a grade pull: the class's page shows the last
    if line.kind.startswith("google"):
        return "/admin/google"
    return "/admin/activity"


def _said(job: Job) -> str:
    report: dict[str, Any] = dict(job.report or {})
    if job.status == JobStatus.ON_HOLD:
        return redact(job.progress_message or str(report.get("hold_reason") or ""))
    if report.get("error"):
        return redact(str(report["error"]))
    attention = report.get("attention")
    if isinstance(attention, Mapping):
        count = attention.get("count", 0)
        if job.kind not in REASONS_WITHOUT_MARKS:
            # A mark job's reasons are about a student's mark and may quote it (Classroom's
            # grade above the limit, a SIS answer echoing the score): the count, not the words;
            # the console page, behind the sign-in, lists them.
            return (
                f"{count} item{'' if count == 1 else 's'} need{'s' if count == 1 else ''} attention"
            )
        reasons = [str(r) for r in attention.get("reasons") or []][:3]
        return redact(f"{count} not done ({'; '.join(reasons)})")
    return ""


def _line(job: Job) -> JobLine:
    return JobLine(
        job.id,
        job.kind,
        JobStatus(job.status),
        job.finished_at or job.started_at,
        _said(job),
        job.class_id,
    )


def jobs_since(
    classroom: Classroom, since: datetime, until: datetime | None = None
) -> list[JobLine]:
    """The jobs that ended since `since` (and before `until`), and every job on hold (however
    old), oldest first."""
    ended = Job.finished_at >= since
    if until is not None:
        ended = and_(ended, Job.finished_at < until)
    with classroom.session() as session:
        found = session.scalars(
            select(Job).where(or_(ended, Job.status == JobStatus.ON_HOLD)).order_by(Job.id)
        ).all()
        by_id = {job.id: job for job in found}
        return [
            _line(job)
            for job in found
            if job.status not in (JobStatus.QUEUED, JobStatus.RUNNING)
            and not _told_by_parent(job, by_id)
        ]


def _told_by_parent(job: Job, found: Mapping[int, Job]) -> bool:
    """True for a class's job of an export of every class on the workers whose parent is told
    too, having ended after it: the parent's report sums its classes up (their failures named),
    as when one process exports them all; every class again would tell a district's thousands
    of classes one by one, and a failed class twice. A class that ended after its parent (whose
    process stopped) is told on its own."""
    parent_id = (job.params or {}).get(PARENT_JOB)
    if parent_id is None or job.finished_at is None:
        return False
    parent = found.get(parent_id) if isinstance(parent_id, int) else None
    return (
        parent is not None
        and parent.finished_at is not None
        and parent.finished_at >= job.finished_at
    )


def school_time(moment: datetime, zone: tzinfo) -> str:
    """A moment as the e-mail tells it: in the school's time zone, to the minute, with the
    zone's abbreviation ("2026-03-10 02:00 CDT")."""
    local = moment.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname() or ''}".rstrip()


def compose_summary(
    lines: Sequence[JobLine],
    settings: SmtpSettings,
    *,
    since: datetime,
    always: bool = False,
    zone: tzinfo = UTC,
) -> EmailMessage | None:
    """The e-mail, or None when nothing happened and `always` is False; times in `zone` (the
    school's)."""
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
    parts = [f"What sislink did since {school_time(since, zone)}."]
    if not lines:
        parts.append("Nothing ran, and nothing is on hold.")
    else:
        parts.append(
            ", ".join(f"{n} {STATUS_WORDS.get(status, status)}" for status, n in counts.items())
            + "."
        )
    if problems:
        parts.append("Needs you:\n" + "\n".join(p.in_words(settings.console_url, zone) for p in problems))
    if fine:
        parts.append("Ran:\n" + "\n".join(f.in_words(settings.console_url, zone) for f in fine))
    parts.append(f"Everything sislink did: {settings.console_url}/admin/activity")
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.sender
    message["To"] = ", ".join(settings.recipients)
    message.set_content("\n\n".join(parts) + "\n")
    return message


def deliver(settings: SmtpSettings, message: EmailMessage) -> None:
    """Hand the message to the SMTP server (raises OSError or SMTPException when it cannot)."""
    smtp: smtplib.SMTP
    if settings.tls:
        smtp = smtplib.SMTP_SSL(
            settings.host, settings.port, timeout=SMTP_TIMEOUT_S, context=settings.tls_context()
        )
    else:
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=SMTP_TIMEOUT_S)
    with smtp:
        if settings.starttls:
            smtp.starttls(context=settings.tls_context())
        if settings.username and settings.password:
            smtp.login(settings.username, settings.password)
        smtp.send_message(message)


def send_summary(
    classroom: Classroom,
    settings: SmtpSettings,
    *,
    since: datetime | None = None,
    always: bool = False,
    now: datetime | None = None,
) -> EmailMessage | None:
    """Compose the summary of what happened since `since` and send it; None when nothing
    happened (and not `always`): then nothing is sent.

    Without `since`, it tells what happened since the last summary (the morning one or one
    asked for like this; the last 24 hours when there was none) and is remembered as the last
    summary. With `since` (a window of the caller's choice) the memory is left alone."""
    now = now or datetime.now(UTC)
    if since is not None:
        message = compose_summary(
            jobs_since(classroom, since, now),
            settings,
            since=since,
            always=always,
            zone=school_zone(classroom),
        )
        if message is not None:
            deliver(settings, message)
        return message
    with classroom.transaction() as session:
        row = OperatorSummary(
            kind=ON_REQUEST, outcome=SENDING, claimed_by=_holder(), claimed_at=now, attempts=1
        )
        session.add(row)
        session.flush()
        row_id = row.id
    return _summarise(classroom, settings, row_id, now=now, always=always)


# ---- the memory, the morning summary, the hold alert -------------------------------------------

DAILY = "daily"
ON_REQUEST = "on_request"
HOLD = "hold"
SENDING, SENT, NOTHING, FAILED = "sending", "sent", "nothing", "failed"
DEFAULT_SUMMARY_TIME = time(6, 0)
FIRST_WINDOW = timedelta(hours=24)  # what the very first summary covers
RETRY_AFTER = timedelta(minutes=15)  # a failed send, or a claim whose process stopped
MAX_ATTEMPTS = 4  # a day's summary (or a hold's alert) is tried at most this often


@dataclass(frozen=True)
class SummaryTime:
    """When the morning summary goes: a local time in the school's zone (None: never)."""

    at: time | None = DEFAULT_SUMMARY_TIME
    zone: tzinfo = UTC

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SummaryTime:
        """SISLINK_SUMMARY_HOUR ("06:00" by default, "7", "07:30", or "off") and
        SISLINK_TIME_ZONE (an IANA name such as "America/Chicago"; UTC by default)."""
        env = os.environ if environ is None else environ
        zone_name = env.get("SISLINK_TIME_ZONE", "").strip() or "UTC"
        try:
            zone: tzinfo = UTC if zone_name.upper() == "UTC" else ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError):
            raise SummaryNotConfigured(
                f"SISLINK_TIME_ZONE is {zone_name!r}, which is not a time zone: give the "
                "school's IANA name, such as America/Chicago or Europe/London."
            ) from None
        text = env.get("SISLINK_SUMMARY_HOUR", "").strip()
        if text.lower() in ("off", "no", "none"):
            return cls(None, zone)
        if not text:
            return cls(DEFAULT_SUMMARY_TIME, zone)
        hour, _, minute = text.partition(":")
        if (
            hour.isdigit()
            and (minute.isdigit() or not minute)
            and 0 <= int(hour) < 24
            and 0 <= int(minute or 0) < 60
        ):
            return cls(time(int(hour), int(minute or 0)), zone)
        raise SummaryNotConfigured(
            f"SISLINK_SUMMARY_HOUR is {text!r}: give the local time to send the morning "
            "summary, such as 06:00 or 7, or 'off' to send none."
        )

    def due_day(self, now: datetime) -> date | None:
        """The school's day whose summary is due at `now` (its time has come), or None."""
        if self.at is None:
            return None
        local = now.astimezone(self.zone)
        if local < datetime.combine(local.date(), self.at, tzinfo=self.zone):
            return None
        return local.date()


@dataclass(frozen=True)
class SummaryRun:
    """What one summary (or alert) came to: its row, "sent", "nothing" or "failed"."""

    row_id: int
    outcome: str
    message: EmailMessage | None
    since: datetime | None = None
    error: str | None = None


def _holder() -> str:
    return this_process().token()[:300]


def last_covered(classroom: Classroom) -> datetime | None:
    """Until when the last summary (the morning one, or one asked for without a window)
    told what happened; None when there was none."""
    with classroom.session() as session:
        found: datetime | None = session.scalar(
            select(func.max(OperatorSummary.covered_until)).where(
                OperatorSummary.kind.in_((DAILY, ON_REQUEST)),
                OperatorSummary.outcome.in_((SENT, NOTHING)),
            )
        )
    if isinstance(found, str):  # SQLite's max() of a timestamp column, should its type be lost
        found = datetime.fromisoformat(found)
    if found is not None and found.tzinfo is None:
        found = found.replace(tzinfo=UTC)
    return found


def claim(
    classroom: Classroom,
    kind: str,
    *,
    now: datetime,
    day: date | None = None,
    job_id: int | None = None,
) -> int | None:
    """Claim the summary of `day` (or the alert of `job_id`) for this process: its row's id,
    or None when another process has it (or it went, or was tried too often). The row's unique
    key decides between processes; a failed or abandoned claim is taken over after a while."""
    same = (OperatorSummary.day == day) if day is not None else (OperatorSummary.job_id == job_id)
    # Read first, and write only when there is something to claim: the scheduler asks every
    # minute, and an insert refused by the unique key would be an error in PostgreSQL's log
    # each time (and a write on SQLite waits for a long import's).
    with classroom.session() as session:
        there = session.execute(
            select(
                OperatorSummary.outcome, OperatorSummary.claimed_at, OperatorSummary.attempts
            ).where(OperatorSummary.kind == kind, same)
        ).one_or_none()
    if there is not None and not (
        there.outcome in (SENDING, FAILED)
        and there.claimed_at < now - RETRY_AFTER
        and there.attempts < MAX_ATTEMPTS
    ):
        return None
    if there is None:
        try:
            with classroom.transaction() as session:
                row = OperatorSummary(
                    kind=kind,
                    day=day,
                    job_id=job_id,
                    outcome=SENDING,
                    claimed_by=_holder(),
                    claimed_at=now,
                    attempts=1,
                )
                session.add(row)
                session.flush()
                return row.id
        except IntegrityError:
            pass  # another process put it there just now
    with classroom.transaction() as session:
        taken = session.execute(
            update(OperatorSummary)
            .where(
                OperatorSummary.kind == kind,
                same,
                OperatorSummary.outcome.in_((SENDING, FAILED)),
                OperatorSummary.claimed_at < now - RETRY_AFTER,
                OperatorSummary.attempts < MAX_ATTEMPTS,
            )
            .values(
                outcome=SENDING,
                claimed_by=_holder(),
                claimed_at=now,
                attempts=OperatorSummary.attempts + 1,
            )
            .execution_options(synchronize_session=False)
        )
        if getattr(taken, "rowcount", 0) != 1:
            return None
        row_id: int | None = session.scalar(
            select(OperatorSummary.id).where(OperatorSummary.kind == kind, same)
        )
        return row_id


def _record(
    classroom: Classroom,
    row_id: int,
    outcome: str,
    *,
    now: datetime,
    since: datetime | None = None,
    subject: str | None = None,
    error: str | None = None,
) -> None:
    with classroom.transaction() as session:
        row = session.get(OperatorSummary, row_id)
        if row is None:
            return
        row.outcome = outcome
        row.subject = subject[:300] if subject else None
        row.error = error[:500] if error else None
        if outcome in (SENT, NOTHING):
            row.covered_from, row.covered_until = since, now
            row.sent_at = now if outcome == SENT else None


def _failure_words(settings: SmtpSettings, exc: BaseException) -> str:
    return redact(
        f"The e-mail could not be sent through {settings.host}:{settings.port} "
        f"({type(exc).__name__}: {exc}); check SISLINK_SMTP_* and that the server is up."
    )


def _summarise(
    classroom: Classroom,
    settings: SmtpSettings,
    row_id: int,
    *,
    now: datetime,
    always: bool = False,
) -> EmailMessage | None:
    """Tell what happened since the last summary, on the claimed row; raises when the SMTP
    server cannot take it (the row says so and is tried again)."""
    since = last_covered(classroom) or now - FIRST_WINDOW
    message = compose_summary(
        jobs_since(classroom, since, now),
        settings,
        since=since,
        always=always,
        zone=school_zone(classroom),
    )
    if message is None:
        _record(classroom, row_id, NOTHING, now=now, since=since)
        return None
    try:
        deliver(settings, message)
    except (OSError, smtplib.SMTPException) as exc:
        _record(classroom, row_id, FAILED, now=now, error=_failure_words(settings, exc))
        raise
    _record(classroom, row_id, SENT, now=now, since=since, subject=str(message["Subject"]))
    logger.info("summary sent to %s: %r", message["To"], str(message["Subject"]))
    return message


def send_daily_summary(
    classroom: Classroom,
    settings: SmtpSettings,
    when: SummaryTime,
    *,
    now: datetime | None = None,
) -> SummaryRun | None:
    """The morning summary, if its time has come today and no process has sent it yet: what
    happened since the last summary (nothing is sent when nothing did). None when it is not
    this process's to send."""
    now = now or datetime.now(UTC)
    day = when.due_day(now)
    if day is None:
        return None
    row_id = claim(classroom, DAILY, now=now, day=day)
    if row_id is None:
        return None
    try:
        message = _summarise(classroom, settings, row_id, now=now)
    except (OSError, smtplib.SMTPException) as exc:
        words = _failure_words(settings, exc)
        logger.warning("the morning summary of %s was not sent: %s", day.isoformat(), words)
        return SummaryRun(row_id, FAILED, None, error=words)
    if message is None:
        logger.info("morning summary of %s: nothing happened, no e-mail", day.isoformat())
    return SummaryRun(row_id, SENT if message is not None else NOTHING, message)


_said_config: str | None = None


def _say_once(words: str) -> None:
    """Log a settings mistake once, not at every minute's tick."""
    global _said_config
    if _said_config != words:
        _said_config = words
        logger.warning("no summary or hold alert is sent: %s", words)


def configured_settings(environ: Mapping[str, str] | None = None) -> SmtpSettings | None:
    """The SMTP settings, or None: quietly when none are set, with a warning (once) when they
    are set wrong."""
    try:
        return SmtpSettings.from_env(environ)
    except SmtpNotSet:
        return None
    except SummaryNotConfigured as exc:
        _say_once(str(exc))
        return None


def daily_summary_tick(
    classroom: Classroom,
    *,
    now: datetime | None = None,
    environ: Mapping[str, str] | None = None,
) -> SummaryRun | None:
    """The scheduler's step: send the morning summary when it is due, if SMTP and the
    recipients are set (on by default once they are) and SISLINK_SUMMARY_HOUR is not "off"."""
    settings = configured_settings(environ)
    if settings is None:
        return None  # no SMTP server or nobody to tell (or said wrong, logged): no summary
    retry_hold_alerts(classroom, settings, now=now)
    try:
        when = school_summary_time(classroom, environ)
    except SummaryNotConfigured as exc:
        _say_once(str(exc))
        return None
    return send_daily_summary(classroom, settings, when, now=now)


def school_zone(classroom: Classroom) -> tzinfo:
    """The school's time zone, which the e-mails tell times in."""
    with classroom.session() as session:
        return school_time_zone(session).zone


def school_summary_time(
    classroom: Classroom, environ: Mapping[str, str] | None = None
) -> SummaryTime:
    """SISLINK_SUMMARY_HOUR in the school's time zone: the one an administrator set (console,
    `sislink time-zone`), else SISLINK_TIME_ZONE, else the server's own zone."""
    env = dict(os.environ if environ is None else environ)
    with classroom.session() as session:
        school = school_time_zone(session, env)
    if school.source != FROM_SERVER or not env.get("SISLINK_TIME_ZONE", "").strip():
        # The zone the console shows, by its tz database name: the setting rules (a wrong
        # SISLINK_TIME_ZONE does not matter then), and SISLINK_TIME_ZONE as typed
        # ("america/chicago") is the zone it names. Only a SISLINK_TIME_ZONE that names no
        # zone is left for from_env to refuse in words.
        env["SISLINK_TIME_ZONE"] = school.name
    return SummaryTime.from_env(env)


def retry_hold_alerts(
    classroom: Classroom, settings: SmtpSettings, *, now: datetime | None = None
) -> list[int]:
    """For jobs still on hold: send the alerts nobody sent (the process that held the job had
    no SMTP settings: a Celery worker started without them), and send again those that failed
    (or whose process stopped while sending) at least 15 minutes ago; the ids of those sent.
    Each at most once: the alert's row (unique per job) decides between processes."""
    now = now or datetime.now(UTC)
    with classroom.session() as session:
        waiting = session.scalars(
            select(Job.id)
            .outerjoin(
                OperatorSummary,
                and_(OperatorSummary.kind == HOLD, OperatorSummary.job_id == Job.id),
            )
            .where(
                Job.status == JobStatus.ON_HOLD,
                or_(
                    OperatorSummary.id.is_(None),
                    and_(
                        OperatorSummary.outcome.in_((SENDING, FAILED)),
                        OperatorSummary.claimed_at < now - RETRY_AFTER,
                        OperatorSummary.attempts < MAX_ATTEMPTS,
                    ),
                ),
            )
            .order_by(Job.id)
        ).all()
    sent: list[int] = []
    for job_id in waiting:
        if job_id is None:
            continue
        try:
            if send_hold_alert(classroom, settings, job_id, now=now) is not None:
                sent.append(job_id)
        except (OSError, smtplib.SMTPException) as exc:
            words = _failure_words(settings, exc)
            logger.warning("the hold alert of job %s was not sent again: %s", job_id, words)
            break  # the server is still away: the others wait for the next try too
    return sent


def compose_hold_alert(
    job: JobLine, report: Mapping[str, Any], settings: SmtpSettings
) -> EmailMessage:
    """The e-mail that says a job is on hold, why, and where to review it."""
    name = KIND_NAMES.get(job.kind, job.kind.replace("_", " ").capitalize())
    page = f"{settings.console_url}{page_of(job)}"
    parts = [
        f"{name} (job {job.job_id}) is on hold for your review: nothing it would change has "
        "been changed, and no other run of it starts until you decide.",
        f"Why: {job.said or 'no reason was given'}",
    ]
    deactivations = report.get("deactivations")
    if isinstance(deactivations, Mapping):
        counts = [
            f"{len(ids)} {entity}"
            for entity, ids in deactivations.items()
            if isinstance(ids, list | tuple) and ids
        ]
        if counts:
            parts.append("It would deactivate " + ", ".join(counts) + ".")
    parts.append(f"Review it, then approve or discard it: {page}")
    parts.append(f"Everything sislink did: {settings.console_url}/admin/activity")
    message = EmailMessage()
    message["Subject"] = f"sislink: {name.lower()} (job {job.job_id}) is on hold for your review"
    message["From"] = settings.sender
    message["To"] = ", ".join(settings.recipients)
    message.set_content("\n\n".join(parts) + "\n")
    return message


def send_hold_alert(
    classroom: Classroom,
    settings: SmtpSettings,
    job_id: int,
    *,
    now: datetime | None = None,
) -> EmailMessage | None:
    """Tell the administrators at once that job `job_id` is on hold (once per job, whichever
    process asks); None when it is not on hold or was already told. Raises when the SMTP
    server cannot take it (the row says so)."""
    now = now or datetime.now(UTC)
    with classroom.session() as session:
        job = session.get(Job, job_id)
        if job is None or job.status != JobStatus.ON_HOLD:
            return None
        line, report = _line(job), dict(job.report or {})
    row_id = claim(classroom, HOLD, now=now, job_id=job_id)
    if row_id is None:
        return None
    message = compose_hold_alert(line, report, settings)
    try:
        deliver(settings, message)
    except (OSError, smtplib.SMTPException) as exc:
        _record(classroom, row_id, FAILED, now=now, error=_failure_words(settings, exc))
        raise
    _record(classroom, row_id, SENT, now=now, subject=str(message["Subject"]))
    logger.info("hold alert sent to %s: %r", message["To"], str(message["Subject"]))
    return message


def alert_hold_if_configured(
    classroom: Classroom, job_id: int, environ: Mapping[str, str] | None = None
) -> EmailMessage | None:
    """The job runner's call when a job ends on hold: the alert, when SMTP and the recipients
    are set; a failure to send is logged and swallowed (the job is on hold either way)."""
    settings = configured_settings(environ)
    if settings is None:
        return None
    try:
        return send_hold_alert(classroom, settings, job_id)
    except (OSError, smtplib.SMTPException) as exc:
        logger.warning(
            "the hold alert of job %s was not sent: %s", job_id, _failure_words(settings, exc)
        )
        return None
