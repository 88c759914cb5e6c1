"""The mark export report ("Troubleshoot mark export"): per coursework and per student, what
happened (exported, unchanged, skipped with the reason, failed with the SIS's own words), when,
kept per class with its history.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import case, insert, select
from sqlalchemy.orm import Session

from sislink.classroom import Classroom
from sislink.classroom.models import Class, Job, MarkExportReport, Person, utc_now
from sislink.classroom.services.jobs import PARENT_JOB
from sislink.sync.preflight import Reason


class Outcome(StrEnum):
    """What happened to one item in one export."""

    EXPORTED = "exported"  # written to the SIS (created or updated)
    DELETED = "deleted"  # removed from the SIS (coursework deleted, mark removed)
    UNCHANGED = "unchanged"  # the SIS already has exactly this: nothing sent
    SKIPPED = "skipped"  # not sent, for a reason the teacher can act on
    FAILED = "failed"  # sent, and the SIS refused or did not answer
    WOULD_EXPORT = "would_export"  # dry run: would be written
    WOULD_DELETE = "would_delete"  # dry run: would be removed


# Skipped items that are the teacher's own choice, not a problem: a draft or not-for-export
# coursework, a mark not yet returned. They are reported, but do not make an export need attention.
CHOSEN_SKIPS = frozenset(
    {Reason.DRAFT_COURSEWORK.value, Reason.NOT_FOR_EXPORT.value, Reason.DRAFT_MARK.value}
)
# How many reasons an export's `attention` names (the count covers them all).
ATTENTION_REASONS = 5


class ExportOutcome(StrEnum):
    """How a whole export ended."""

    SUCCEEDED = "succeeded"  # everything was sent, or left out by the teacher's own choice
    # Nothing failed, but items were skipped for a reason someone must act on (no due date, a
    # category the SIS lacks, a student the SIS class does not have...): sent nothing for them.
    NEEDS_ATTENTION = "needs_attention"
    PARTIAL = "partial"  # some items failed; the next export finishes them
    REFUSED = "refused"  # nothing was sent (permission, connection, link)
    FAILED = "failed"  # the SIS could not be asked, or stopped answering: not done (or not all)
    STOPPED = "stopped"  # someone stopped it (cancelled, or the SIS was disconnected) part way
    DRY_RUN = "dry_run"


@dataclass(frozen=True)
class ItemReport:
    """One coursework (lineItem) or one student's mark (result) in one export."""

    kind: str  # "lineItem" or "result"
    coursework_id: int
    coursework_title: str
    outcome: Outcome
    sourced_id: str
    at: datetime
    student_id: int | None = None
    student: str | None = None  # the student's name and email, for the teacher
    reason: str = ""  # why skipped or failed, or a note on an exported item
    status_code: int | None = None  # the SIS's HTTP status, when it answered with an error
    sis_said: str | None = None  # the SIS's own description of the error
    # Why it was skipped, as pre-flight's Reason value (e.g. "no_due_date"), when it was.
    skip_reason: str | None = None

    @property
    def needs_attention(self) -> bool:
        """Skipped for a reason someone must act on (not by the teacher's own choice)."""
        return self.outcome is Outcome.SKIPPED and self.skip_reason not in CHOSEN_SKIPS

    def in_words(self) -> str:
        """The item and why, for lists of reasons: "Essay / Ann Lee (ann@...): It has no..."."""
        who = f" / {self.student}" if self.student else ""
        return f"{self.coursework_title}{who}: {self.reason}"

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "coursework_id": self.coursework_id,
            "coursework": self.coursework_title,
            "student_id": self.student_id,
            "student": self.student,
            "outcome": self.outcome.value,
            "reason": self.reason,
            "status_code": self.status_code,
            "sis_said": self.sis_said,
            "skip_reason": self.skip_reason,
            "sourced_id": self.sourced_id,
            "at": self.at.isoformat(),
        }


@dataclass
class ExportReport:
    """What one export of one class did. `writes` counts PUT and DELETE requests sent."""

    class_id: int
    class_title: str
    sis_class_id: str | None
    dry_run: bool
    started_at: datetime = field(default_factory=utc_now)
    finished_at: datetime | None = None
    writes: int = 0
    items: list[ItemReport] = field(default_factory=list)
    refused: str | None = None  # the reason nothing was sent, when refused
    failed: str | None = None  # why the export could not be done or finished, when it could not
    stopped: str | None = None  # said when the export was stopped before it finished
    # The SIS stopped answering altogether (SISDown): an export of several classes tries no more.
    sis_down: bool = False
    report_id: int | None = None
    # An export with nothing to send (its inputs are the last clean export's, see
    # sislink.sync.export_state): nothing planned, no item listed; these are the last clean
    # export's counts as they stand now, and when it was.
    carried_counts: dict[str, dict[str, int]] | None = None
    unchanged_since: datetime | None = None
    # Set by `compact()`: what the items said, once most of them are let go.
    cached_counts: dict[str, dict[str, int]] | None = field(default=None, repr=False)
    cached_attention: dict[str, Any] | None = field(default=None, repr=False)
    cached_attention_count: int | None = field(default=None, repr=False)

    def compact(self) -> None:
        """Let go of the items once the report is kept (`save_report` wrote them all), so that
        an export of many classes holds no more than a summary of each: the counts and what
        needs attention stay as they were; the failed items and the first few needing
        attention stay for the job's report. `json_items()` lists only those afterwards."""
        counts, attention, needing = self.counts(), self.attention(), self.attention_count
        failed = [item for item in self.items if item.outcome is Outcome.FAILED]
        named = [item for item in self.items if item.needs_attention][:ATTENTION_REASONS]
        self.items = failed + named
        self.cached_counts = counts
        self.cached_attention = attention
        self.cached_attention_count = needing

    @property
    def outcome(self) -> ExportOutcome:
        if self.refused is not None:
            return ExportOutcome.REFUSED
        if self.failed is not None:
            return ExportOutcome.FAILED
        if self.stopped is not None:
            return ExportOutcome.STOPPED
        if self.dry_run:
            return ExportOutcome.DRY_RUN
        if any(item.outcome is Outcome.FAILED for item in self.items):
            return ExportOutcome.PARTIAL
        if self.attention_count:
            return ExportOutcome.NEEDS_ATTENTION
        return ExportOutcome.SUCCEEDED

    @property
    def attention_count(self) -> int:
        """How many items were skipped for a reason someone must act on."""
        if self.cached_attention_count is not None:
            return self.cached_attention_count
        return sum(1 for item in self.items if item.needs_attention)

    def attention(self) -> dict[str, Any] | None:
        """{"count": N, "reasons": [the first few, in words]} when items need attention."""
        if self.cached_attention_count is not None:
            return self.cached_attention
        needing = [item for item in self.items if item.needs_attention]
        if not needing:
            return None
        reasons: list[str] = []
        for item in needing:
            said = item.in_words()
            if said not in reasons:
                reasons.append(said)
            if len(reasons) == ATTENTION_REASONS:
                break
        return {"count": len(needing), "reasons": reasons}

    def counts(self) -> dict[str, dict[str, int]]:
        """How many items ended each way, per kind: {"lineItem": {"exported": 3, ...}, ...}."""
        if self.cached_counts is not None:
            return self.cached_counts
        by_kind: dict[str, Counter[str]] = {"lineItem": Counter(), "result": Counter()}
        for kind, carried in (self.carried_counts or {}).items():
            by_kind.setdefault(kind, Counter()).update(carried)
        for item in self.items:
            by_kind.setdefault(item.kind, Counter())[item.outcome.value] += 1
        return {kind: dict(counter) for kind, counter in by_kind.items()}

    def summary(self) -> dict[str, Any]:
        return {
            "class_id": self.class_id,
            "class": self.class_title,
            "sis_class_id": self.sis_class_id,
            "outcome": self.outcome.value,
            "dry_run": self.dry_run,
            "refused": self.refused,
            "failed": self.failed,
            "stopped": self.stopped,
            "attention": self.attention(),
            "writes": self.writes,
            "counts": self.counts(),
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "unchanged_since": (
                self.unchanged_since.isoformat() if self.unchanged_since is not None else None
            ),
        }

    def as_json(self) -> dict[str, Any]:
        return {**self.summary(), "report_id": self.report_id, "items": self.json_items()}

    def json_items(self) -> list[dict[str, Any]]:
        return [item.as_json() for item in self.items]


def save_report(
    session: Session,
    report: ExportReport,
    *,
    requested_by_id: int | None,
    job_id: int | None = None,
) -> MarkExportReport:
    """Keep the report in the class's export history."""
    row = MarkExportReport(
        class_id=report.class_id,
        job_id=job_id,
        requested_by_id=requested_by_id,
        dry_run=report.dry_run,
        outcome=report.outcome.value,
        writes=report.writes,
        started_at=report.started_at,
        finished_at=report.finished_at or utc_now(),
        summary=report.summary(),
        items=report.json_items(),
    )
    session.add(row)
    session.flush()
    report.report_id = row.id
    return row


def save_reports(
    session: Session,
    reports: Sequence[ExportReport],
    *,
    requested_by_id: int | None,
    job_id: int | None = None,
) -> None:
    """Keep several reports in their classes' histories, in one statement (plain rows, not
    ORM objects: an export of 8,000 unchanged classes keeps 8,000 at once)."""
    if not reports:
        return
    rows = [
        {
            "class_id": report.class_id,
            "job_id": job_id,
            "requested_by_id": requested_by_id,
            "dry_run": report.dry_run,
            "outcome": report.outcome.value,
            "writes": report.writes,
            "started_at": report.started_at,
            "finished_at": report.finished_at or utc_now(),
            "summary": report.summary(),
            "items": report.json_items(),
        }
        for report in reports
    ]
    ids = session.scalars(
        insert(MarkExportReport).returning(MarkExportReport.id, sort_by_parameter_order=True),
        rows,
    ).all()
    for report, row_id in zip(reports, ids, strict=True):
        report.report_id = row_id


def report_history(
    session: Session, class_id: int, *, limit: int = 20
) -> Sequence[MarkExportReport]:
    """The class's export reports, newest first."""
    statement = (
        select(MarkExportReport)
        .where(MarkExportReport.class_id == class_id)
        .order_by(MarkExportReport.started_at.desc(), MarkExportReport.id.desc())
        .limit(limit)
    )
    return session.scalars(statement).all()


def job_reports(
    session: Session, job_id: int, *, with_items: bool = True
) -> list[dict[str, Any]]:
    """The stored reports of an export job as JSON, oldest first: its own, and, for an export of
    every class handed to workers, those of its classes' jobs."""
    children = select(Job.id).where(Job.params[PARENT_JOB].as_integer() == job_id)
    rows = session.scalars(
        select(MarkExportReport)
        .where((MarkExportReport.job_id == job_id) | MarkExportReport.job_id.in_(children))
        .order_by(MarkExportReport.id)
    )
    return [stored_report_json(row, with_items=with_items) for row in rows]


def stored_report_json(row: MarkExportReport, *, with_items: bool = True) -> dict[str, Any]:
    """A stored report as JSON (the summary, and the items when asked)."""
    data: dict[str, Any] = {**row.summary, "report_id": row.id, "job_id": row.job_id}
    if with_items:
        data["items"] = list(row.items)
    return data


# Failed or partly failed exports come first, then those needing attention: they are what an
# administrator acts on.
_FAILURES_FIRST = case(
    (MarkExportReport.outcome == ExportOutcome.FAILED.value, 0),
    (MarkExportReport.outcome == ExportOutcome.PARTIAL.value, 1),
    (MarkExportReport.outcome == ExportOutcome.REFUSED.value, 2),
    (MarkExportReport.outcome == ExportOutcome.STOPPED.value, 3),
    (MarkExportReport.outcome == ExportOutcome.NEEDS_ATTENTION.value, 4),
    else_=5,
)


def recent_exports(classroom: Classroom, *, limit: int = 100) -> list[dict[str, Any]]:
    """The latest mark exports of every class, failures first, then newest first."""
    with classroom.session() as session:
        rows = session.execute(
            select(MarkExportReport, Class.title, Person.email)
            .join(Class, Class.id == MarkExportReport.class_id)
            .outerjoin(Person, Person.id == MarkExportReport.requested_by_id)
            .order_by(
                _FAILURES_FIRST, MarkExportReport.started_at.desc(), MarkExportReport.id.desc()
            )
            .limit(limit)
        ).all()
        return [
            {
                "report_id": report.id,
                "class_id": report.class_id,
                "class": title,
                "by": email or "sislink",
                "started_at": report.started_at,
                "outcome": report.outcome,
                "dry_run": report.dry_run,
                "writes": report.writes,
                "counts": (report.summary or {}).get("counts", {}),
                "refused": (report.summary or {}).get("refused"),
                "failed": (report.summary or {}).get("failed"),
                "stopped": (report.summary or {}).get("stopped"),
                "attention": (report.summary or {}).get("attention"),
            }
            for report, title, email in rows
        ]
