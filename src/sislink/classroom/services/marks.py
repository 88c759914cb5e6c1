"""Marks: a teacher sets, excuses and returns students' marks on coursework."""

from __future__ import annotations

import math
from collections.abc import Sequence

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
from sislink.classroom.services.unset import UNSET, Unset


def parse_score(value: float | int | str | None) -> float | None:
    """A score as a number: '8.5' and 8.5 are the same; '' or None means no score yet.

    Scores above max points are allowed (extra credit); negative scores are not.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise InvalidInput(f"A mark of {value!r} is not a number.")
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)
    except ValueError:
        raise InvalidInput(f"A mark of {value!r} is not a number.") from None
    if not math.isfinite(number):
        raise InvalidInput(f"A mark of {value!r} is not a number.")
    if number < 0:
        raise InvalidInput(f"A mark cannot be negative (got {value!r}).")
    return number


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
) -> Mark:
    """Set a student's mark (a draft until returned). Only the class's teachers may.

    A mark is one of a score, excused or missing, so setting one clears the other two: a score
    clears excused and missing; `excused=True` clears the score and missing; `missing=True`
    clears the score and excused. (The export sends a missing mark as 0 or 'not submitted'
    only when it has no score, so a missing mark must not keep an earlier one.) Asking for two
    at once is refused. `draft=True` makes the mark a draft again even if it was returned, so
    it is not exported until it is returned again.
    """
    work = coursework_for_editing(session, actor, coursework_id)
    if work.state == CourseworkState.DELETED:
        raise InvalidInput(f"The coursework {work.title!r} was deleted; marks cannot be set on it.")
    new_score = None if isinstance(score, Unset) else parse_score(score)
    if sum((new_score is not None, excused is True, missing is True)) > 1:
        raise InvalidInput("A mark is a score, excused or missing, not two of them: give only one.")
    if work.max_points is None and new_score is not None:
        raise InvalidInput(
            f"The coursework {work.title!r} has no max points, so it takes no score."
        )
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
        raise NotFound(
            f"Person {student_id} is not a student of this class, so cannot have a mark on "
            f"{work.title!r}. Enrol them first."
        )
