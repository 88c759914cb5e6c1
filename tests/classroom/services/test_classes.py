"""Classes: teachers change only what they teach; hand edits are remembered; enrolment rules."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from sislink.classroom.db import Classroom
from sislink.classroom.errors import InvalidInput, NotFound, PermissionDenied
from sislink.classroom.models import AuditEvent, Class, EnrolmentRole
from sislink.classroom.services import classes
from sislink.classroom.services.access import Actor, teaches

if TYPE_CHECKING:
    from ..conftest import School


def test_a_teacher_cannot_edit_a_class_they_do_not_teach(
    classroom: Classroom, school: School
) -> None:
    with (
        pytest.raises(PermissionDenied, match="You do not teach the class with id"),
        classroom.transaction() as session,
    ):
        classes.edit_class(session, school.brian, school.class_id, title="Mine now")
    with classroom.transaction() as session:
        stored = session.get(Class, school.class_id)
        assert stored is not None and stored.title == "Maths 7"


def test_a_co_teacher_may_edit_and_an_admin_may_edit_anything(
    classroom: Classroom, school: School
) -> None:
    assert school.brian.person_id is not None
    with classroom.transaction() as session:
        classes.enrol(
            session, school.ada, school.class_id, school.brian.person_id, EnrolmentRole.TEACHER
        )
        assert teaches(session, school.brian.person_id, school.class_id)
        classes.edit_class(session, school.brian, school.class_id, section="7B/2")
        classes.edit_class(session, school.admin, school.class_id, title="Maths Seven")
        taught = classes.classes_taught_by(session, school.brian.person_id)
        assert [c.title for c in taught] == ["Maths Seven"]
    with classroom.transaction() as session:
        classes.unenrol(
            session, school.ada, school.class_id, school.brian.person_id, EnrolmentRole.TEACHER
        )
        assert classes.classes_taught_by(session, school.brian.person_id) == []
    with pytest.raises(PermissionDenied), classroom.transaction() as session:
        classes.edit_class(session, school.brian, school.class_id, title="Again")


def test_hand_edited_fields_are_remembered_only_when_they_change(
    classroom: Classroom, school: School
) -> None:
    with classroom.transaction() as session:
        classes.edit_class(session, school.ada, school.class_id, title="Maths 7", section="7B")
        stored = session.get(Class, school.class_id)
        assert stored is not None and stored.hand_edited_fields == []
        classes.edit_class(session, school.ada, school.class_id, title="Algebra")
        assert stored.hand_edited_fields == ["title"]


def test_a_teacher_creates_only_classes_they_teach(classroom: Classroom, school: School) -> None:
    with (
        pytest.raises(PermissionDenied, match="only create classes they teach"),
        classroom.transaction() as session,
    ):
        classes.create_class(
            session, school.ada, title="Brian's", primary_teacher_id=school.brian.person_id
        )
    with (
        pytest.raises(PermissionDenied, match="Only teachers and administrators"),
        classroom.transaction() as session,
    ):
        student = classes.members(session, school.class_id, EnrolmentRole.STUDENT)[0]
        classes.create_class(session, Actor.of(student), title="Student club")


def test_blank_titles_and_students_as_teachers_are_refused(
    classroom: Classroom, school: School
) -> None:
    with (
        pytest.raises(InvalidInput, match="A title is required"),
        classroom.transaction() as session,
    ):
        classes.create_class(session, school.ada, title="   ")
    with pytest.raises(InvalidInput, match="is not a teacher"), classroom.transaction() as session:
        classes.enrol(
            session, school.ada, school.class_id, school.student_ids[0], EnrolmentRole.TEACHER
        )
    with pytest.raises(NotFound, match="no class with id 999"), classroom.transaction() as session:
        classes.edit_class(session, school.admin, 999, title="x")


def test_enrolling_twice_keeps_one_enrolment_and_is_audited(
    classroom: Classroom, school: School
) -> None:
    with classroom.transaction() as session:
        first = classes.enrol(
            session, school.ada, school.class_id, school.student_ids[0], EnrolmentRole.STUDENT
        )
        again = classes.enrol(
            session, school.ada, school.class_id, school.student_ids[0], EnrolmentRole.STUDENT
        )
        assert first.id == again.id
        names = [p.name for p in classes.members(session, school.class_id, EnrolmentRole.STUDENT)]
        assert names == ["Sam", "Tess"]
        actions = {e.action for e in session.query(AuditEvent).all()}
        assert {"class.created", "class.enrolled"} <= actions
