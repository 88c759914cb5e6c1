"""Marks: a teacher sets, excuses and returns students' marks on coursework.

One rule for what a mark may be, whichever way it is set (command line, REST, the console's
gradebook, a gradebook sheet): `parse_score` reads it (plain digits 0-9 with one decimal point;
a decimal comma only where the caller says it cannot be a thousands separator), and `set_mark`
refuses a mark above the class's extra-credit limit (by default twice the coursework's points).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from sislink.classroom.errors import InvalidInput, NotFound
from sislink.classroom.models import (
    Coursework,
    CourseworkState,
    Enrolment,
    EnrolmentRole,
    Mark,
    MarkState,
)
from sislink.classroom.services.access import Actor, flush_or_conflict
from sislink.classroom.services.coursework import coursework_for_editing
from sislink.classroom.services.export_settings import extra_credit_limit
from sislink.classroom.services.plain_numbers import read_plain_number
from sislink.classroom.services.unset import UNSET, Unset


def parse_score(value: float | int | str | None, *, decimal_comma: bool = False) -> float | None:
    """A score as a number: '8.5' and 8.5 are the same; '' or None means no score yet.

    Text is read only as plain digits 0-9 with at most one decimal point: exponent notation
    (1e3), digits of other scripts (Arabic-Indic, full-width...), 'inf', 'nan' and thousands
    separators are refused, not read. `decimal_comma` also reads '8,5' as 8.5 (a gradebook sheet
    separated by semicolons or tabs, where a comma cannot be a separator). Negative marks are
    refused; marks above the points are checked against the class's limit by `set_mark`.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return read_plain_number(value, subject=f"A mark of {value!r}", decimal_comma=decimal_comma)


def check_extra_credit(work: Coursework, score: float, limit: float) -> None:
    """A mark above the coursework's points is extra credit, up to `limit` times the points."""
    if work.max_points is None or score <= work.max_points * limit:
        return
    most = work.max_points * limit
    raise InvalidInput(
        f"A mark of {score:g} on {work.title!r} is more than {limit:g} times its "
        f"{work.max_points:g} points, the most this class allows with extra credit ({most:g}): "
        "correct it, or ask the class's primary teacher to raise the class's extra-credit limit."
    )


def set_mark(
    session: Session,
    actor: Actor,
    coursework_id: int,
    student_id: int,
    *,
    score: float | int | str | Unset | None = UNSET,
    excused: bool | None = None,
    missing: bool | None = None,
    late: bool | None = None,
    comment: str | None = None,
    draft: bool = False,
    decimal_comma: bool = False,
) -> Mark:
    """Set a student's mark (a draft until returned). Only the class's teachers may.

    A mark is one of a score, excused or missing, so setting one clears the other two: a score
    clears excused and missing; `excused=True` clears the score and missing; `missing=True`
    clears the score and excused. (The export sends a missing mark as 0 or 'not submitted'
    only when it has no score, so a missing mark must not keep an earlier one.) Asking for two
    at once is refused. `draft=True` makes the mark a draft again even if it was returned, so
    it is not exported until it is returned again. A score is read by `parse_score` and may be
    at most the class's extra-credit limit times the points.
    """
    work = coursework_for_editing(session, actor, coursework_id)
    return write_mark(
        session,
        actor,
        work,
        student_id,
        limit=extra_credit_limit(session, work.class_id),
        score=score,
        excused=excused,
        missing=missing,
        late=late,
        comment=comment,
        draft=draft,
        decimal_comma=decimal_comma,
    )


def write_mark(
    session: Session,
    actor: Actor,
    work: Coursework,
    student_id: int,
    *,
    limit: float,
    score: float | int | str | Unset | None = UNSET,
    excused: bool | None = None,
    missing: bool | None = None,
    late: bool | None = None,
    comment: str | None = None,
    draft: bool = False,
    decimal_comma: bool = False,
    returned: bool = False,
    enrolled: bool = False,
) -> Mark:
    """`set_mark` for a caller that has checked, once for many marks, that the actor may edit
    `work` (coursework_for_editing) and read the class's extra-credit `limit`: a gradebook
    sheet. `enrolled=True` says the caller found the student among the class's active
    students. `returned=True` returns the mark too (as `return_marks`)."""
    coursework_id = work.id
    if work.state == CourseworkState.DELETED:
        raise InvalidInput(f"The coursework {work.title!r} was deleted; marks cannot be set on it.")
    new_score = (
        None if isinstance(score, Unset) else parse_score(score, decimal_comma=decimal_comma)
    )
    if sum((new_score is not None, excused is True, missing is True)) > 1:
        raise InvalidInput("A mark is a score, excused or missing, not two of them: give only one.")
    if work.max_points is None and new_score is not None:
        raise InvalidInput(
            f"The coursework {work.title!r} has no max points, so it takes no score."
        )
    if new_score is not None:
        check_extra_credit(work, new_score, limit)
    if not enrolled:
        _require_student_of(session, work, student_id)
    mark = session.scalars(
        select(Mark).where(Mark.coursework_id == coursework_id, Mark.student_id == student_id)
    ).first()
    if mark is None:
        mark = Mark(coursework_id=coursework_id, student_id=student_id, comment="")
        session.add(mark)
    if new_score is not None:
        mark.score, mark.excused, mark.missing = new_score, False, False
    elif excused:
        mark.score, mark.excused, mark.missing = None, True, False
    elif missing:
        mark.score, mark.excused, mark.missing = None, False, True
    else:
        # Only clearing: a blank score, or excused / missing set to False.
        if not isinstance(score, Unset):
            mark.score = None
        if excused is not None:
            mark.excused = False
        if missing is not None:
            mark.missing = False
    if late is not None:
        mark.late = late
    if comment is not None:
        mark.comment = comment
    if draft:
        mark.state = MarkState.DRAFT
    elif returned:
        mark.state = MarkState.RETURNED
    mark.updated_by_id = actor.person_id
    flush_or_conflict(session, "This mark was changed by someone else at the same time; try again.")
    return mark


def return_marks(
    session: Session, actor: Actor, coursework_id: int, student_ids: Sequence[int] | None = None
) -> int:
    """Return draft marks to students (all, or these students). Returns how many changed."""
    coursework_for_editing(session, actor, coursework_id)
    statement = select(Mark).where(
        Mark.coursework_id == coursework_id, Mark.state == MarkState.DRAFT
    )
    if student_ids is not None:
        statement = statement.where(Mark.student_id.in_(student_ids))
    returned = 0
    for mark in session.scalars(statement):
        mark.state = MarkState.RETURNED
        mark.updated_by_id = actor.person_id
        returned += 1
    return returned


def marks_for(session: Session, coursework_id: int) -> Sequence[Mark]:
    statement = select(Mark).where(Mark.coursework_id == coursework_id).order_by(Mark.student_id)
    return session.scalars(statement).all()


def marks_of_coursework(session: Session, coursework_ids: Iterable[int]) -> Sequence[Mark]:
    """Every mark kept for these coursework (any class's: the caller chooses the ids)."""
    wanted = sorted(set(coursework_ids))
    if not wanted:
        return []
    return session.scalars(select(Mark).where(Mark.coursework_id.in_(wanted))).all()


def _require_student_of(session: Session, work: Coursework, student_id: int) -> None:
    enrolled = session.scalars(
        select(Enrolment.id).where(
            Enrolment.class_id == work.class_id,
            Enrolment.person_id == student_id,
            Enrolment.role == EnrolmentRole.STUDENT,
            Enrolment.active.is_(True),
        )
    ).first()
    if enrolled is None:
        # Not named: a teacher learns nothing about people outside the class (not even who a
        # person id belongs to).
        raise NotFound(
            f"No student of this class is person {student_id}, so they cannot have a mark on "
            f"{work.title!r}: enrol the student first, or check who is meant."
        )
