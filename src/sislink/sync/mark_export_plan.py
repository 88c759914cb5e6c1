"""Mark export planning: from a class's coursework and marks (read once) and what the SIS says
of its class, the lineItems and results to PUT, the ones to DELETE, and what is unchanged or
skipped. Pure: no database, no network, so every rule is testable on its own.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from sislink.classroom.models import (
    Category,
    Coursework,
    CourseworkState,
    ExportKind,
    ExportRecord,
    GradingPeriod,
    Mark,
    MarkState,
    MissingMarkExport,
    Person,
)
from sislink.oneroster.models import GUIDRef, LineItem, Result
from sislink.sync import preflight
from sislink.sync.class_link import SisClassFacts
from sislink.sync.identity import line_item_sourced_id, result_sourced_id

# The ledger's last_status for an object the SIS has: "created" when the ledger had no entry
# for it before its last PUT, "updated" when it had. Not the SIS's status code: the 1.2
# OpenAPI answers 201 to updates too, and a PUT retried after a dropped answer sees 200 for
# what it created.
CREATED = "created"
UPDATED = "updated"


@dataclass(frozen=True)
class CourseworkFacts:
    id: int
    title: str
    description: str
    max_points: float | None
    assign_date: datetime | None
    due_date: datetime | None
    created_at: datetime
    state: str
    export_to_sis: bool
    category_title: str | None
    category_sourced_id: str | None
    grading_period_sourced_id: str | None


@dataclass(frozen=True)
class MarkFacts:
    id: int
    coursework_id: int
    student_id: int
    score: float | None
    state: str
    excused: bool
    missing: bool
    late: bool
    comment: str
    updated_at: datetime


@dataclass(frozen=True)
class StudentFacts:
    id: int
    name: str
    email: str | None
    sis_sourced_id: str | None
    sis_identifier: str | None

    @property
    def label(self) -> str:
        return f"{self.name} <{self.email}>" if self.email else self.name


@dataclass(frozen=True)
class LedgerFacts:
    kind: str
    object_id: int
    sourced_id: str
    content_hash: str | None


@dataclass(frozen=True)
class ClassFacts:
    """Everything about one class that an export reads from the classroom, in one go."""

    class_id: int
    title: str
    sis_class_id: str
    scope: str  # the SIS identity the class's objects are written under
    namespace: uuid.UUID
    missing_as: str
    export_drafts: bool
    default_category: str | None
    title_limit: int
    coursework: tuple[CourseworkFacts, ...]
    marks: tuple[MarkFacts, ...]
    students: dict[int, StudentFacts]
    ledger: tuple[LedgerFacts, ...]
    # The school's time zone: a due date's grading period and a mark's scoreDate are its days.
    zone: tzinfo = UTC

    def day_of(self, moment: datetime) -> date:
        """The school's day at `moment`."""
        return moment.astimezone(self.zone).date()


def read_class_facts(
    session: Session,
    *,
    class_id: int,
    title: str,
    sis_class_id: str,
    scope: str,
    namespace: uuid.UUID,
    missing_as: str,
    export_drafts: bool,
    default_category: str | None,
    title_limit: int,
    zone: tzinfo = UTC,
) -> ClassFacts:
    """Read the class's coursework (deleted too), marks, their students and the ledger.

    Plain rows (columns, not ORM objects): a class may have thousands of marks, and nothing
    read here is changed through the session."""
    # The class's categories, and any its coursework names that another class holds now: a
    # roster import that brings in its own copy of a linked class's SIS class gives that copy
    # the SIS's categories, the rows the linked class's coursework was filed under among them.
    # The teacher's choice still stands: its title and SIS id say which SIS category it is.
    categories = {
        row.id: (row.title, row.sis_sourced_id)
        for row in session.execute(
            select(Category.id, Category.title, Category.sis_sourced_id).where(
                or_(
                    Category.class_id == class_id,
                    Category.id.in_(
                        select(Coursework.category_id).where(Coursework.class_id == class_id)
                    ),
                )
            )
        )
    }
    works = session.execute(
        select(
            Coursework.id,
            Coursework.title,
            Coursework.description,
            Coursework.max_points,
            Coursework.assign_date,
            Coursework.due_date,
            Coursework.created_at,
            Coursework.state,
            Coursework.export_to_sis,
            Coursework.category_id,
            Coursework.grading_period_id,
        )
        .where(Coursework.class_id == class_id)
        .order_by(Coursework.id)
    ).all()
    period_ids = {w.grading_period_id for w in works if w.grading_period_id is not None}
    periods: dict[int, str | None] = (
        {
            row.id: row.sis_sourced_id
            for row in session.execute(
                select(GradingPeriod.id, GradingPeriod.sis_sourced_id).where(
                    GradingPeriod.id.in_(period_ids)
                )
            )
        }
        if period_ids
        else {}
    )
    coursework = tuple(
        CourseworkFacts(
            id=w.id,
            title=w.title,
            description=w.description or "",
            max_points=w.max_points,
            assign_date=w.assign_date,
            due_date=w.due_date,
            created_at=w.created_at,
            state=w.state,
            export_to_sis=w.export_to_sis,
            category_title=categories[w.category_id][0] if w.category_id in categories else None,
            category_sourced_id=(
                categories[w.category_id][1] if w.category_id in categories else None
            ),
            grading_period_sourced_id=(
                periods.get(w.grading_period_id) if w.grading_period_id is not None else None
            ),
        )
        for w in works
    )
    marks = tuple(
        MarkFacts(
            id=m.id,
            coursework_id=m.coursework_id,
            student_id=m.student_id,
            score=m.score,
            state=m.state,
            excused=m.excused,
            missing=m.missing,
            late=m.late,
            comment=m.comment or "",
            updated_at=m.updated_at,
        )
        for m in session.execute(
            select(
                Mark.id,
                Mark.coursework_id,
                Mark.student_id,
                Mark.score,
                Mark.state,
                Mark.excused,
                Mark.missing,
                Mark.late,
                Mark.comment,
                Mark.updated_at,
            )
            .join(Coursework, Coursework.id == Mark.coursework_id)
            .where(Coursework.class_id == class_id)
        )
    )
    student_ids = sorted({m.student_id for m in marks})
    students = {
        p.id: StudentFacts(p.id, p.name, p.email, p.sis_sourced_id, p.sis_identifier)
        for start in range(0, len(student_ids), 5000)
        for p in session.execute(
            select(
                Person.id, Person.name, Person.email, Person.sis_sourced_id, Person.sis_identifier
            ).where(Person.id.in_(student_ids[start : start + 5000]))
        )
    }
    records = session.execute(
        select(
            ExportRecord.kind,
            ExportRecord.object_id,
            ExportRecord.sis_sourced_id,
            ExportRecord.content_hash,
        ).where(ExportRecord.sis_identity == scope)
    ).all()
    # The ledger is kept per SIS class. After an unlink and a relink, it also holds what another
    # classroom class sent there: those results are that class's, not removed marks of this one,
    # so they are left out (and stay in the SIS as they are).
    unknown = sorted(
        {r.object_id for r in records if r.kind == ExportKind.RESULT} - {m.id for m in marks}
    )
    elsewhere = {
        mark_id
        for start in range(0, len(unknown), 5000)
        for mark_id in session.scalars(
            select(Mark.id).where(Mark.id.in_(unknown[start : start + 5000]))
        )
    }
    ledger = tuple(
        LedgerFacts(r.kind, r.object_id, r.sis_sourced_id, r.content_hash)
        for r in records
        if not (r.kind == ExportKind.RESULT and r.object_id in elsewhere)
    )
    return ClassFacts(
        class_id=class_id,
        title=title,
        sis_class_id=sis_class_id,
        scope=scope,
        namespace=namespace,
        missing_as=missing_as,
        export_drafts=export_drafts,
        default_category=default_category,
        title_limit=title_limit,
        coursework=coursework,
        marks=marks,
        students=students,
        ledger=ledger,
        zone=zone,
    )


def content_hash(obj: LineItem | Result) -> str:
    """A hash of what is sent (dateLastModified left out: it changes on every send)."""
    data = obj.wire()
    data.pop("dateLastModified", None)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Put:
    """A lineItem or result to PUT, and what to remember once the SIS has it."""

    kind: ExportKind
    object_id: int  # the coursework id (lineItem) or the mark id (result)
    coursework_id: int
    coursework_title: str
    body: LineItem | Result
    content_hash: str
    student_id: int | None = None
    student: str | None = None
    note: str = ""  # said in the report next to "exported" (a shortened title)
    replaces_object_id: int | None = None  # an older ledger key for the same sourcedId
    recorded: bool = False  # the ledger already has it (sent before): "updated", not "created"

    @property
    def sourced_id(self) -> str:
        return self.body.sourced_id


@dataclass
class Delete:
    """A lineItem or result to DELETE in the SIS (coursework deleted, mark removed)."""

    kind: ExportKind
    object_id: int
    sourced_id: str
    coursework_id: int
    coursework_title: str
    why: str
    student_id: int | None = None
    student: str | None = None


@dataclass
class Kept:
    """An item that is not sent: unchanged, or skipped for a reason."""

    kind: ExportKind
    coursework_id: int
    coursework_title: str
    sourced_id: str
    skipped: preflight.Finding | None  # None: unchanged
    student_id: int | None = None
    student: str | None = None


@dataclass
class LineItemPlan:
    """One coursework: its lineItem PUT (None if unchanged) and its results' PUTs."""

    coursework_id: int
    put: Put | None
    results: list[Put] = field(default_factory=list)


@dataclass
class ExportPlan:
    line_items: list[LineItemPlan] = field(default_factory=list)
    deletes: list[Delete] = field(default_factory=list)
    kept: list[Kept] = field(default_factory=list)

    @property
    def writes(self) -> int:
        puts = sum((1 if li.put else 0) + len(li.results) for li in self.line_items)
        return puts + len(self.deletes)


def plan_export(
    facts: ClassFacts,
    sis: SisClassFacts,
    students: preflight.StudentDirectory,
    *,
    version_has_school: bool,
) -> ExportPlan:
    """What to send for one class. Unchanged items (same content hash as the ledger) send nothing."""
    plan = ExportPlan()
    ledger_items = {r.object_id: r for r in facts.ledger if r.kind == ExportKind.LINE_ITEM}
    ledger_results = {r.object_id: r for r in facts.ledger if r.kind == ExportKind.RESULT}
    results_by_sid = {r.sourced_id: r for r in ledger_results.values()}
    marks_by_work: dict[int, list[MarkFacts]] = {}
    for mark in facts.marks:
        marks_by_work.setdefault(mark.coursework_id, []).append(mark)
    mark_ids = {m.id for m in facts.marks}
    claimed: set[int] = set()  # ledger result keys matched to a current mark

    for work in facts.coursework:
        li_id = line_item_sourced_id(facts.namespace, facts.scope, work.id)
        marks = sorted(marks_by_work.get(work.id, []), key=lambda m: m.student_id)
        recorded = ledger_items.get(work.id)
        # Each mark's result sourcedId, derived once (a UUIDv5 each).
        sids = {
            mark.id: result_sourced_id(facts.namespace, facts.scope, work.id, mark.student_id)
            for mark in marks
        }
        for mark in marks:
            record = ledger_results.get(mark.id) or results_by_sid.get(sids[mark.id])
            if record is not None:
                claimed.add(record.object_id)
        gone = work.state == CourseworkState.DELETED or (
            work.state == CourseworkState.PUBLISHED and not work.export_to_sis
        )
        if gone or work.state != CourseworkState.PUBLISHED:
            if gone and _plan_removal(
                plan, facts, work, recorded, marks, ledger_results, results_by_sid, sids
            ):
                pass
            elif work.state == CourseworkState.DRAFT:
                plan.kept.append(
                    Kept(
                        ExportKind.LINE_ITEM,
                        work.id,
                        work.title,
                        li_id,
                        preflight.Finding(
                            preflight.Reason.DRAFT_COURSEWORK,
                            "It is a draft: publish it to export it.",
                        ),
                    )
                )
            elif work.state == CourseworkState.PUBLISHED:
                plan.kept.append(
                    Kept(
                        ExportKind.LINE_ITEM,
                        work.id,
                        work.title,
                        li_id,
                        preflight.Finding(
                            preflight.Reason.NOT_FOR_EXPORT,
                            "It is set not to go to the SIS.",
                        ),
                    )
                )
            continue

        line_item, finding, note = _line_item(facts, sis, work, li_id, version_has_school)
        if line_item is None:
            assert finding is not None
            plan.kept.append(Kept(ExportKind.LINE_ITEM, work.id, work.title, li_id, finding))
            for mark in marks:
                student = facts.students.get(mark.student_id)
                plan.kept.append(
                    Kept(
                        ExportKind.RESULT,
                        work.id,
                        work.title,
                        sids[mark.id],
                        preflight.Finding(
                            preflight.Reason.COURSEWORK_NOT_SENT,
                            "Its coursework could not go to the SIS (see the coursework).",
                        ),
                        mark.student_id,
                        student.label if student else None,
                    )
                )
            continue
        digest = content_hash(line_item)
        put: Put | None = None
        if recorded is None or recorded.content_hash != digest:
            put = Put(
                ExportKind.LINE_ITEM,
                work.id,
                work.id,
                work.title,
                line_item,
                digest,
                note=note,
                recorded=recorded is not None,
            )
        else:
            plan.kept.append(Kept(ExportKind.LINE_ITEM, work.id, work.title, li_id, None))
        item_plan = LineItemPlan(work.id, put)
        plan.line_items.append(item_plan)
        for mark in marks:
            _plan_result(
                plan,
                item_plan,
                facts,
                students,
                work,
                li_id,
                mark,
                ledger_results,
                results_by_sid,
                sids[mark.id],
            )

    # Ledger results with no mark any more (a mark row removed): delete them in the SIS.
    for record in ledger_results.values():
        if record.object_id not in mark_ids and record.object_id not in claimed:
            plan.deletes.append(
                Delete(
                    ExportKind.RESULT,
                    record.object_id,
                    record.sourced_id,
                    0,
                    "(a removed mark)",
                    "The mark was removed.",
                )
            )
    return plan


def _plan_removal(
    plan: ExportPlan,
    facts: ClassFacts,
    work: CourseworkFacts,
    recorded: LedgerFacts | None,
    marks: Sequence[MarkFacts],
    ledger_results: dict[int, LedgerFacts],
    results_by_sid: dict[str, LedgerFacts],
    sids: dict[int, str],
) -> bool:
    """Plan the DELETEs of coursework that is gone (deleted, or set not to go to the SIS): its
    results that the ledger knows were sent, then its lineItem. The SIS does not delete a
    lineItem's results with it (many refuse to delete a lineItem that still has results), so
    the run sends the lineItem's DELETE only once all of its results are gone. False when the
    ledger knows of nothing sent for it."""
    why = (
        "The coursework was deleted."
        if work.state == CourseworkState.DELETED
        else "The coursework was set not to go to the SIS."
    )
    planned = False
    for mark in marks:
        record = ledger_results.get(mark.id) or results_by_sid.get(sids[mark.id])
        if record is None:
            continue
        student = facts.students.get(mark.student_id)
        plan.deletes.append(
            Delete(
                ExportKind.RESULT,
                record.object_id,
                record.sourced_id,
                work.id,
                work.title,
                f"{why} Its mark goes with it.",
                mark.student_id,
                student.label if student else f"student {mark.student_id}",
            )
        )
        planned = True
    if recorded is not None:
        plan.deletes.append(
            Delete(ExportKind.LINE_ITEM, work.id, recorded.sourced_id, work.id, work.title, why)
        )
        planned = True
    return planned


def _plan_result(
    plan: ExportPlan,
    item_plan: LineItemPlan,
    facts: ClassFacts,
    students: preflight.StudentDirectory,
    work: CourseworkFacts,
    li_id: str,
    mark: MarkFacts,
    ledger_results: dict[int, LedgerFacts],
    results_by_sid: dict[str, LedgerFacts],
    sid: str,
) -> None:
    record = ledger_results.get(mark.id) or results_by_sid.get(sid)
    student = facts.students.get(mark.student_id)
    label = student.label if student else f"student {mark.student_id}"

    def keep(finding: preflight.Finding | None) -> None:
        plan.kept.append(
            Kept(ExportKind.RESULT, work.id, work.title, sid, finding, mark.student_id, label)
        )

    blank = mark.score is None and not mark.excused and not mark.missing
    if blank:
        if record is not None:
            plan.deletes.append(
                Delete(
                    ExportKind.RESULT,
                    record.object_id,
                    record.sourced_id,
                    work.id,
                    work.title,
                    "The mark was removed.",
                    mark.student_id,
                    label,
                )
            )
        return
    if mark.state != MarkState.RETURNED and not facts.export_drafts:
        keep(
            preflight.Finding(
                preflight.Reason.DRAFT_MARK,
                "The mark is a draft: return it to the student to export it (or let this "
                "class export draft marks).",
            )
        )
        return
    bad_score = preflight.score_finding(mark.score)
    if bad_score is not None:
        keep(bad_score)
        return
    sis_student = students.find(
        student.sis_sourced_id if student else None,
        student.email if student else None,
        student.sis_identifier if student else None,
    )
    if sis_student is None:
        keep(
            preflight.student_finding(
                student.name if student else label, student.email if student else None
            )
        )
        return
    result = _result(facts, work, li_id, sid, mark, sis_student)
    digest = content_hash(result)
    if record is not None and record.content_hash == digest and record.object_id == mark.id:
        keep(None)
        return
    item_plan.results.append(
        Put(
            ExportKind.RESULT,
            mark.id,
            work.id,
            work.title,
            result,
            digest,
            student_id=mark.student_id,
            student=label,
            replaces_object_id=(
                record.object_id if record is not None and record.object_id != mark.id else None
            ),
            recorded=record is not None,
        )
    )


def _line_item(
    facts: ClassFacts,
    sis: SisClassFacts,
    work: CourseworkFacts,
    sourced_id: str,
    version_has_school: bool,
) -> tuple[LineItem | None, preflight.Finding | None, str]:
    findings = [
        preflight.due_date_finding(work.due_date),
        preflight.points_finding(work.max_points),
    ]
    first = next((f for f in findings if f is not None), None)
    if first is not None:
        return None, first, ""
    assert work.due_date is not None and work.max_points is not None
    period, finding = preflight.choose_grading_period(
        sis, work.due_date, work.grading_period_sourced_id, facts.zone
    )
    if finding is not None:
        return None, finding, ""
    category, finding = preflight.choose_category(
        sis, work.category_title, work.category_sourced_id, facts.default_category
    )
    if finding is not None or category is None:
        return None, finding, ""
    title, description, cut = preflight.fit_title(work.title, work.description, facts.title_limit)
    assign = work.assign_date or work.created_at
    if assign > work.due_date:
        assign = work.due_date
    values: dict[str, Any] = {
        "sourced_id": sourced_id,
        "title": title,
        "description": description or None,
        "assign_date": assign,
        "due_date": work.due_date,
        "class_": GUIDRef(sourced_id=sis.sis_class_id),
        "category": GUIDRef(sourced_id=category),
        "result_value_min": 0.0,
        "result_value_max": float(work.max_points),
    }
    if period is not None:
        values["grading_period"] = GUIDRef(sourced_id=period)
    if version_has_school and sis.school_sourced_id:
        values["school"] = GUIDRef(sourced_id=sis.school_sourced_id)
    return LineItem(**values), None, cut.message if cut else ""


def _result(
    facts: ClassFacts,
    work: CourseworkFacts,
    li_id: str,
    sourced_id: str,
    mark: MarkFacts,
    sis_student: str,
) -> Result:
    score: float | None = mark.score
    status = "fully graded"
    if mark.excused:
        status, score = "exempt", None
    elif mark.missing and mark.score is None:
        if facts.missing_as == MissingMarkExport.NOT_SUBMITTED:
            status = "not submitted"
        else:
            score = 0.0
    return Result(
        sourced_id=sourced_id,
        line_item=GUIDRef(sourced_id=li_id),
        student=GUIDRef(sourced_id=sis_student),
        class_=GUIDRef(sourced_id=facts.sis_class_id),
        score_status=status,
        score=score,
        score_date=facts.day_of(mark.updated_at),
        comment=mark.comment or None,
        late=True if mark.late else None,
        missing=True if mark.missing else None,
    )


def line_item_ids(plan: ExportPlan) -> Sequence[str]:
    return [li.put.sourced_id for li in plan.line_items if li.put is not None]
