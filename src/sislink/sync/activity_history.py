"""Mark exports and roster imports over time, for the console's charts (read-only).

The Activity page draws, per day, what exports wrote, skipped and failed and what imports
changed; the class page each export of one class; the Roster page what each import changed per
entity. The sums are the database's, so a district's thousands of reports never come to Python.

Days are the given time zone's (the school's; UTC when none is given): each day's start and end
are worked out here (daylight saving included) and the database sums the exports between them,
one range of migration 0017's index a day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo

from sqlalchemy import ColumnElement, Integer, case, func, literal, select, union_all
from sqlalchemy.orm import Session

from sislink.classroom.models import Job, JobStatus, MarkExportReport, UTCDateTime
from sislink.sync.export_report import ExportOutcome, Outcome
from sislink.sync.google_grades import PULL_SOURCE
from sislink.sync.roster_holds import ROSTER_IMPORT
from sislink.sync.roster_report import ENTITIES

# The Activity page's window: the last 30 days, today included.
ACTIVITY_DAYS = 30
# How many exports of a class, and how many imports, the history charts show.
HISTORY_LIMIT = 20
# What an import changed: its counts per entity that are changes (not unchanged or skipped).
CHANGES = ("created", "updated", "deactivated")
# Roster jobs whose import was applied (an approved held import ends as succeeded).
_APPLIED_JOB_STATUSES = (JobStatus.SUCCEEDED.value, JobStatus.NEEDS_ATTENTION.value)
# A held import applied its creates and updates when it stopped (only its deactivations wait for
# an administrator), and a discarded one keeps them: both changed the roster.
_HELD_REPORT_STATUSES = ("on_hold", "discarded")


# Only exports that ended so can have skipped items needing attention, or failed items: only
# their summaries are read. Reading a stored summary (JSON) is most of the cost over a
# district's thousands of exports, and most exports succeed.
_MAY_NEED_ATTENTION = tuple(
    outcome.value
    for outcome in (
        ExportOutcome.NEEDS_ATTENTION,
        ExportOutcome.PARTIAL,
        ExportOutcome.FAILED,
        ExportOutcome.STOPPED,
    )
)
_MAY_HAVE_FAILED = tuple(
    outcome.value
    for outcome in (ExportOutcome.PARTIAL, ExportOutcome.FAILED, ExportOutcome.STOPPED)
)


# Exports that failed outright: the SIS could not be asked or stopped answering (a class "not
# tried" after it went down ends so too), or nothing was sent (permission, connection, link).
# Such a report often has no items, so its failed items are 0: the export itself is counted.
# A stopped export was someone's choice (or a disconnected SIS), not counted as failed.
FAILED_OUTRIGHT = (ExportOutcome.FAILED.value, ExportOutcome.REFUSED.value)


# How a Google grade pull's kept report ends: its items are all skipped, so it needs attention
# (or succeeded, when all were drafts); it writes nothing. Only such reports' summaries are read
# to tell a pull from an export.
_MAY_BE_A_PULL = (ExportOutcome.SUCCEEDED.value, ExportOutcome.NEEDS_ATTENTION.value)


def _is_an_export() -> ColumnElement[bool]:
    """Not a Google grade pull's kept report: a pull keeps what cannot go to the SIS in the
    class's report history, but it is not a mark export (it sent nothing and asked the SIS
    nothing). An unchanged class's export (thousands a night, no writes) is kept finished when
    it started, a pull's report a moment later: so those exports' summaries are not read (30,000
    of them cost 35 ms more on PostgreSQL, measured)."""
    source = case(
        (
            MarkExportReport.outcome.in_(_MAY_BE_A_PULL)
            & (MarkExportReport.writes == 0)
            & (MarkExportReport.finished_at != MarkExportReport.started_at),
            MarkExportReport.summary["source"].as_string(),
        ),
        else_=None,
    )
    return func.coalesce(source, "") != PULL_SOURCE


def _skipped_needing_attention() -> ColumnElement[int]:
    """Items an export skipped for a reason someone must act on (its summary's attention
    count; a draft left out by the teacher's choice is not one)."""
    count = MarkExportReport.summary[("attention", "count")].as_integer()
    return case(
        (MarkExportReport.outcome.in_(_MAY_NEED_ATTENTION), func.coalesce(count, 0)), else_=0
    )


def _failed_items() -> ColumnElement[int]:
    """Items (coursework and marks) the SIS refused or did not answer for, from the summary."""
    coursework, marks = (
        func.coalesce(
            MarkExportReport.summary[("counts", kind, Outcome.FAILED.value)].as_integer(), 0
        )
        for kind in ("lineItem", "result")
    )
    return case((MarkExportReport.outcome.in_(_MAY_HAVE_FAILED), coursework + marks), else_=0)


def _failed_outright() -> ColumnElement[int]:
    """1 for an export that failed or was refused as a whole (its outcome, no summary read)."""
    return case((MarkExportReport.outcome.in_(FAILED_OUTRIGHT), 1), else_=0)


@dataclass
class ActivityDay:
    """One day of exports and imports: export writes (requests sent), items skipped for a reason
    someone must act on, items failed, exports that failed or were refused as a whole (often
    with no item, when the SIS was down); what applied imports created, updated and deactivated."""

    day: date
    exports: int = 0
    writes: int = 0
    skipped: int = 0
    failed: int = 0
    failed_exports: int = 0
    imports: int = 0
    created: int = 0
    updated: int = 0
    deactivated: int = 0

    @property
    def changes(self) -> int:
        return self.created + self.updated + self.deactivated


@dataclass
class ActivityWindow:
    """The Activity page's days, oldest first, every day of the window (empty days too)."""

    first: date
    last: date
    days: list[ActivityDay]

    @property
    def exports(self) -> int:
        return sum(day.exports for day in self.days)

    @property
    def imports(self) -> int:
        return sum(day.imports for day in self.days)

    def total(self, name: str) -> int:
        return sum(int(getattr(day, name)) for day in self.days)


def activity_by_day(
    session: Session,
    *,
    zone: tzinfo = UTC,
    days: int = ACTIVITY_DAYS,
    now: datetime | None = None,
) -> ActivityWindow:
    """Exports (not dry runs) and applied roster imports of the last `days` days in `zone`,
    today included."""
    last = (now or datetime.now(UTC)).astimezone(zone).date()
    first = last - timedelta(days=days - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=zone).astimezone(UTC)
    by_day = {
        first + timedelta(days=n): ActivityDay(first + timedelta(days=n)) for n in range(days)
    }

    # The window's days as rows (number, start, end), joined to the exports that started in
    # each: one index range a day, summed per day.
    starts = [
        datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
        for day in (first + timedelta(days=n) for n in range(days + 1))
    ]
    window = union_all(
        *(
            select(
                literal(n, Integer).label("n"),
                # Typed binds, not CASTs: SQLite would turn CAST(text AS DATETIME) into a number.
                literal(starts[n], UTCDateTime).label("start"),
                literal(starts[n + 1], UTCDateTime).label("end"),
            )
            for n in range(days)
        )
    ).subquery("days")
    exports = session.execute(
        select(
            window.c.n,
            func.count(),
            func.coalesce(func.sum(MarkExportReport.writes), 0),
            func.coalesce(func.sum(_skipped_needing_attention()), 0),
            func.coalesce(func.sum(_failed_items()), 0),
            func.coalesce(func.sum(_failed_outright()), 0),
        )
        .select_from(window)
        .join(
            MarkExportReport,
            (MarkExportReport.started_at >= window.c.start)
            & (MarkExportReport.started_at < window.c.end)
            & MarkExportReport.dry_run.is_(False)
            & _is_an_export(),
        )
        .group_by(window.c.n)
    )
    for n, count, writes, skipped, failed, failed_exports in exports:
        summed = by_day[first + timedelta(days=int(n))]
        summed.exports, summed.writes = int(count), int(writes)
        summed.skipped, summed.failed = int(skipped), int(failed)
        summed.failed_exports = int(failed_exports)

    # Imports are a few a day at most: their counts (a small part of each report) are summed here.
    # An approved hold's deactivations are on the day it was approved.
    for imported in _applied_imports(session, since=since, held_too=True):
        found = by_day.get(imported.at.astimezone(zone).date())
        if found is not None:
            found.imports += 1
            found.created += imported.total("created")
            found.updated += imported.total("updated")
        deactivated_at = imported.approved_at or imported.at
        found = by_day.get(deactivated_at.astimezone(zone).date())
        if found is not None:
            found.deactivated += imported.total("deactivated")
    return ActivityWindow(first, last, [by_day[day] for day in sorted(by_day)])


@dataclass(frozen=True)
class ClassExport:
    """One export of one class, for its history chart."""

    report_id: int
    at: datetime
    outcome: str
    writes: int
    skipped: int
    failed: int

    @property
    def failed_outright(self) -> bool:
        """The export failed or was refused as a whole (it may have no item to draw)."""
        return self.outcome in FAILED_OUTRIGHT


def class_export_history(
    session: Session, class_id: int, *, limit: int = HISTORY_LIMIT
) -> list[ClassExport]:
    """The class's latest exports (not dry runs), oldest first."""
    rows = session.execute(
        select(
            MarkExportReport.id,
            MarkExportReport.started_at,
            MarkExportReport.outcome,
            MarkExportReport.writes,
            _skipped_needing_attention(),
            _failed_items(),
        )
        .where(
            MarkExportReport.class_id == class_id,
            MarkExportReport.dry_run.is_(False),
            _is_an_export(),
        )
        .order_by(MarkExportReport.started_at.desc(), MarkExportReport.id.desc())
        .limit(limit)
    ).all()
    return [
        ClassExport(int(i), at, str(outcome), int(writes), int(skipped), int(failed))
        for i, at, outcome, writes, skipped, failed in reversed(rows)
    ]


@dataclass
class ImportChanges:
    """What one applied roster import changed, per entity: {"students": {"created": 3, ...}}."""

    job_id: int
    at: datetime
    status: str
    mode: str
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    # When an administrator approved its held deactivations (None: not held, or not approved).
    approved_at: datetime | None = None

    def total(self, change: str) -> int:
        return sum(self.counts.get(entity, {}).get(change, 0) for entity in ENTITIES)

    @property
    def changes(self) -> int:
        return sum(self.total(change) for change in CHANGES)

    def changed_entities(self) -> list[str]:
        """The entities this import changed, in the roster's order."""
        return [
            entity
            for entity in ENTITIES
            if any(self.counts.get(entity, {}).get(change, 0) for change in CHANGES)
        ]


def _applied_imports(
    session: Session,
    *,
    since: datetime | None = None,
    limit: int | None = None,
    held_too: bool = False,
) -> list[ImportChanges]:
    """Applied roster imports, newest first (only their counts, mode and status are read);
    `held_too`: with the held and discarded ones (what they created and updated stays)."""
    when = func.coalesce(Job.started_at, Job.created_at)
    report_status = Job.report["status"].as_string()
    changed = (report_status == "applied") & Job.status.in_(_APPLIED_JOB_STATUSES)
    if held_too:
        changed = changed | report_status.in_(_HELD_REPORT_STATUSES)
    statement = (
        select(
            Job.id,
            Job.started_at,
            Job.created_at,
            Job.status,
            Job.report["mode"].as_string(),
            Job.report["counts"],
            case((Job.report["approved_by"].as_string().is_not(None), Job.finished_at)),
        )
        .where(Job.kind == ROSTER_IMPORT, changed)
        .order_by(when.desc(), Job.id.desc())
    )
    if since is not None:
        # An import held before the window and approved in it deactivated in it.
        statement = statement.where((when >= since) | (Job.finished_at >= since))
    if limit is not None:
        statement = statement.limit(limit)
    return [
        ImportChanges(
            job_id=int(job_id),
            at=started or created,
            status=str(status),
            mode=str(mode or ""),
            counts={
                str(entity): {change: int((numbers or {}).get(change) or 0) for change in CHANGES}
                for entity, numbers in (counts or {}).items()
            },
            approved_at=approved_at,
        )
        for job_id, started, created, status, mode, counts, approved_at in session.execute(
            statement
        )
    ]


def import_changes(session: Session, *, limit: int = HISTORY_LIMIT) -> list[ImportChanges]:
    """The latest applied roster imports and what each changed, oldest first."""
    return list(reversed(_applied_imports(session, limit=limit)))
