"""Coursework and grading categories: create, edit, publish, delete (teachers of the class)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sislink.classroom.errors import Conflict, InvalidInput, NotFound
from sislink.classroom.models import Category, Coursework, CourseworkState, GradingPeriod
from sislink.classroom.services.access import Actor, class_for_editing, flush_or_conflict
from sislink.classroom.services.audit import record_event
from sislink.classroom.services.export_settings import (
    extra_credit_limit,
    refuse_marks_above_limit,
)
from sislink.classroom.services.plain_numbers import read_plain_number
from sislink.classroom.services.unset import UNSET, Unset


def create_category(
    session: Session, actor: Actor, class_id: int, *, title: str, weight: float | None = None
) -> Category:
    """Add a grading category to a class; titles are unique within a class."""
    class_for_editing(session, actor, class_id)
    cleaned = _title(title)
    if weight is not None and (not math.isfinite(weight) or weight < 0):
        raise InvalidInput("A category weight must be zero or a positive number.")
    existing = session.scalars(
        select(Category).where(Category.class_id == class_id, Category.title == cleaned)
    ).first()
    if existing is not None:
        raise Conflict(f"This class already has a category called {cleaned!r}.")
    category = Category(class_id=class_id, title=cleaned, weight=weight)
    session.add(category)
    flush_or_conflict(session, f"This class already has a category called {cleaned!r}.")
    return category


def create_coursework(
    session: Session,
    actor: Actor,
    class_id: int,
    *,
    title: str,
    description: str = "",
    max_points: float | int | str | None = 100,
    assign_date: datetime | None = None,
    due_date: datetime | None = None,
    category_id: int | None = None,
    grading_period_id: int | None = None,
    export_to_sis: bool = True,
    publish: bool = False,
) -> Coursework:
    """Add coursework to a class (a draft unless `publish`)."""
    class_for_editing(session, actor, class_id)
    work = Coursework(
        class_id=class_id,
        title=_title(title),
        description=description,
        max_points=parse_max_points(max_points),
        export_to_sis=export_to_sis,
        state=CourseworkState.PUBLISHED if publish else CourseworkState.DRAFT,
        created_by_id=actor.person_id,
    )
    _set_dates(work, assign_date, due_date)
    _set_category(session, work, category_id)
    _set_grading_period(session, work, grading_period_id)
    session.add(work)
    flush_or_conflict(session, "This coursework could not be saved.")
    record_event(
        session, actor, "coursework.created", f"coursework:{work.id}", {"title": work.title}
    )
    return work


def edit_coursework(
    session: Session,
    actor: Actor,
    coursework_id: int,
    *,
    title: str | None = None,
    description: str | None = None,
    max_points: float | int | str | Unset | None = UNSET,
    assign_date: datetime | Unset | None = UNSET,
    due_date: datetime | Unset | None = UNSET,
    category_id: int | Unset | None = UNSET,
    grading_period_id: int | Unset | None = UNSET,
    export_to_sis: bool | None = None,
) -> Coursework:
    """Change coursework; pass only what changes (None clears dates, category, max points)."""
    work = coursework_for_editing(session, actor, coursework_id)
    if title is not None:
        work.title = _title(title)
    if description is not None:
        work.description = description
    if not isinstance(max_points, Unset):
        points = parse_max_points(max_points)
        if points is not None and (work.max_points is None or points < work.max_points):
            refuse_marks_above_limit(
                session,
                work.class_id,
                extra_credit_limit(session, work.class_id),
                change=f"Changing the points of {work.title!r} to {points:g}",
                keep="the points as they are",
                coursework_id=work.id,
                points=points,
            )
        work.max_points = points
    new_assign = work.assign_date if isinstance(assign_date, Unset) else assign_date
    new_due = work.due_date if isinstance(due_date, Unset) else due_date
    _set_dates(work, new_assign, new_due)
    if not isinstance(category_id, Unset):
        _set_category(session, work, category_id)
    if not isinstance(grading_period_id, Unset):
        _set_grading_period(session, work, grading_period_id)
    if export_to_sis is not None:
        work.export_to_sis = export_to_sis
    return work


def publish_coursework(session: Session, actor: Actor, coursework_id: int) -> Coursework:
    work = coursework_for_editing(session, actor, coursework_id)
    work.state = CourseworkState.PUBLISHED
    record_event(session, actor, "coursework.published", f"coursework:{work.id}")
    return work


def delete_coursework(session: Session, actor: Actor, coursework_id: int) -> Coursework:
    """Mark coursework deleted; it stays stored, so that mark export can delete it in the SIS."""
    work = coursework_for_editing(session, actor, coursework_id)
    work.state = CourseworkState.DELETED
    record_event(session, actor, "coursework.deleted", f"coursework:{work.id}")
    return work


def coursework_of_class(
    session: Session, class_id: int, *, include_deleted: bool = False
) -> Sequence[Coursework]:
    statement = select(Coursework).where(Coursework.class_id == class_id)
    if not include_deleted:
        statement = statement.where(Coursework.state != CourseworkState.DELETED)
    return session.scalars(statement.order_by(Coursework.due_date, Coursework.id)).all()


def coursework_for_editing(session: Session, actor: Actor, coursework_id: int) -> Coursework:
    work = session.get(Coursework, coursework_id)
    if work is None:
        raise NotFound(f"There is no coursework with id {coursework_id}.")
    class_for_editing(session, actor, work.class_id)
    return work


def parse_max_points(value: float | int | str | None) -> float | None:
    """Max points as a number; None means the coursework is not marked with points."""
    if value is None:
        return None
    try:
        # The rule marks are read by: points of '1e9' (or other scripts' digits) would be read
        # by float(), and lift any mark under the extra-credit limit.
        number = read_plain_number(value, subject=f"Max points of {value!r}")
    except InvalidInput as exc:
        raise InvalidInput(f"Max points must be a positive number: {exc.message}") from None
    if number <= 0:
        raise InvalidInput(f"Max points must be a positive number (got {value!r}).")
    return number


def _title(title: str) -> str:
    cleaned = title.strip()
    if not cleaned:
        raise InvalidInput("A title is required.")
    return cleaned


def _set_dates(work: Coursework, assign_date: datetime | None, due_date: datetime | None) -> None:
    for label, moment in (("assign date", assign_date), ("due date", due_date)):
        if moment is not None and moment.tzinfo is None:
            raise InvalidInput(f"The {label} needs a time zone (for example 2026-09-01T09:00Z).")
    if assign_date is not None and due_date is not None and due_date < assign_date:
        raise InvalidInput("The due date is before the assign date; change one of them.")
    work.assign_date, work.due_date = assign_date, due_date


def _set_category(session: Session, work: Coursework, category_id: int | None) -> None:
    if category_id is not None:
        category = session.get(Category, category_id)
        if category is None or category.class_id != work.class_id:
            raise InvalidInput(f"Category {category_id} is not one of this class's categories.")
    work.category_id = category_id


def _set_grading_period(session: Session, work: Coursework, grading_period_id: int | None) -> None:
    if grading_period_id is not None and session.get(GradingPeriod, grading_period_id) is None:
        raise NotFound(f"There is no grading period with id {grading_period_id}.")
    work.grading_period_id = grading_period_id
