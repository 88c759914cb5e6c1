"""Coursework: plain messages for bad input, categories per class, deleted is kept for export."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import func, select

from sislink.classroom.db import Classroom
from sislink.classroom.errors import Conflict, InvalidInput, PermissionDenied
from sislink.classroom.models import Coursework, CourseworkState
from sislink.classroom.services import classes, coursework

if TYPE_CHECKING:
    from ..conftest import School

SEPT_1 = datetime(2026, 9, 1, 9, tzinfo=UTC)
SEPT_8 = datetime(2026, 9, 8, 9, tzinfo=UTC)


@pytest.mark.parametrize("bad", [0, -5, "abc", "", float("nan"), float("inf")])
def test_max_points_must_be_a_positive_number(
    classroom: Classroom, school: School, bad: object
) -> None:
    with (
        pytest.raises(InvalidInput, match="Max points must be a positive number"),
        classroom.transaction() as session,
    ):
        coursework.create_coursework(
            session,
            school.ada,
            school.class_id,
            title="Quiz",
            max_points=bad,  # type: ignore[arg-type]
        )
    with classroom.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Coursework)) == 0


def test_coursework_is_created_as_a_draft_and_published(
    classroom: Classroom, school: School
) -> None:
    with classroom.transaction() as session:
        category = coursework.create_category(
            session, school.ada, school.class_id, title="Homework", weight=0.4
        )
        work = coursework.create_coursework(
            session,
            school.ada,
            school.class_id,
            title="  Fractions  ",
            max_points="20",
            assign_date=SEPT_1,
            due_date=SEPT_8,
            category_id=category.id,
            export_to_sis=False,
        )
        assert (work.title, work.max_points, work.state) == ("Fractions", 20.0, "draft")
        assert work.export_to_sis is False
        coursework.publish_coursework(session, school.ada, work.id)
    with classroom.transaction() as session:
        stored = session.get(Coursework, work.id)
        assert stored is not None
        assert stored.state == CourseworkState.PUBLISHED
        assert stored.due_date == SEPT_8  # read back time-zone aware on both databases


def test_due_before_assign_and_dates_without_time_zone_are_refused(
    classroom: Classroom, school: School
) -> None:
    with (
        pytest.raises(InvalidInput, match="due date is before the assign date"),
        classroom.transaction() as session,
    ):
        coursework.create_coursework(
            session, school.ada, school.class_id, title="Q", assign_date=SEPT_8, due_date=SEPT_1
        )
    with pytest.raises(InvalidInput, match="needs a time zone"), classroom.transaction() as session:
        coursework.create_coursework(
            session, school.ada, school.class_id, title="Q", due_date=datetime(2026, 9, 8)
        )


def test_a_category_from_another_class_cannot_be_used(classroom: Classroom, school: School) -> None:
    with classroom.transaction() as session:
        other = classes.create_class(session, school.brian, title="Science")
        foreign = coursework.create_category(session, school.brian, other.id, title="Labs")
    with (
        pytest.raises(InvalidInput, match="not one of this class's categories"),
        classroom.transaction() as session,
    ):
        coursework.create_coursework(
            session, school.ada, school.class_id, title="Q", category_id=foreign.id
        )


def test_category_titles_are_unique_within_a_class(classroom: Classroom, school: School) -> None:
    with classroom.transaction() as session:
        coursework.create_category(session, school.ada, school.class_id, title="Tests")
    with (
        pytest.raises(Conflict, match="already has a category called 'Tests'"),
        classroom.transaction() as session,
    ):
        coursework.create_category(session, school.ada, school.class_id, title="Tests")


def test_only_the_classes_teachers_change_its_coursework(
    classroom: Classroom, school: School
) -> None:
    with classroom.transaction() as session:
        work = coursework.create_coursework(session, school.ada, school.class_id, title="Essay")
    with pytest.raises(PermissionDenied), classroom.transaction() as session:
        coursework.edit_coursework(session, school.brian, work.id, title="Mine")


def test_editing_clears_with_none_and_keeps_what_is_not_given(
    classroom: Classroom, school: School
) -> None:
    with classroom.transaction() as session:
        work = coursework.create_coursework(
            session, school.ada, school.class_id, title="Essay", due_date=SEPT_8
        )
        coursework.edit_coursework(session, school.ada, work.id, max_points=None)
        assert work.max_points is None and work.due_date == SEPT_8
        coursework.edit_coursework(session, school.ada, work.id, due_date=None, title="Essay 2")
        assert work.due_date is None and work.title == "Essay 2"


def test_deleted_coursework_stays_stored_but_leaves_the_list(
    classroom: Classroom, school: School
) -> None:
    with classroom.transaction() as session:
        work = coursework.create_coursework(session, school.ada, school.class_id, title="Old")
        coursework.delete_coursework(session, school.ada, work.id)
        assert coursework.coursework_of_class(session, school.class_id) == []
        kept = coursework.coursework_of_class(session, school.class_id, include_deleted=True)
        assert [w.state for w in kept] == ["deleted"]
