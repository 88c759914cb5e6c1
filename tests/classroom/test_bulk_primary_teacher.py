"""The primary teacher an enrolment import sets on its classes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from tests.classroom.test_bulk import load_structure

from sislink.classroom.bulk import EnrolmentRow, PersonRow, upsert_enrolments, upsert_people
from sislink.classroom.db import Classroom
from sislink.classroom.models import Class, EnrolmentRole, Person, Role

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def _class(classroom: Classroom, sourced_id: str) -> Class:
    with classroom.session() as session:
        found = session.scalars(select(Class).where(Class.sis_sourced_id == sourced_id)).one()
        session.expunge(found)
        return found


def _person_id(classroom: Classroom, sourced_id: str) -> int:
    with classroom.session() as session:
        return session.scalars(select(Person.id).where(Person.sis_sourced_id == sourced_id)).one()


def test_each_class_gets_its_primary_teacher_stamped_and_a_hand_edited_one_is_kept(
    classroom: Classroom,
) -> None:
    load_structure(classroom)
    with classroom.transaction() as session:
        upsert_people(session, [PersonRow("p-t2", "Bo Teacher", roles=frozenset({Role.TEACHER}))])
        session.execute(
            update(Class)
            .values(updated_at=LONG_AGO, hand_edited_fields=["primary_teacher_id"])
            .where(Class.sis_sourced_id == "cls-2")
        )
        session.execute(update(Class).values(updated_at=LONG_AGO))
    rows = [
        EnrolmentRow("e-1", "cls-1", "p-t", EnrolmentRole.TEACHER, is_primary=True),
        EnrolmentRow("e-2", "cls-2", "p-t2", EnrolmentRole.TEACHER, is_primary=True),
        EnrolmentRow("e-3", "cls-2", "p-t", EnrolmentRole.TEACHER),  # a co-teacher
    ]
    with classroom.transaction() as session:
        upsert_enrolments(session, rows)
    first, second = _class(classroom, "cls-1"), _class(classroom, "cls-2")
    assert first.primary_teacher_id == _person_id(classroom, "p-t")
    assert first.updated_at > datetime.now(UTC) - timedelta(hours=1)
    assert second.primary_teacher_id is None  # a teacher chose it by hand: left alone
    assert second.updated_at == LONG_AGO
    with classroom.transaction() as session:
        again = upsert_enrolments(session, rows)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    assert _class(classroom, "cls-1").updated_at == first.updated_at


def test_the_last_primary_teacher_of_a_class_in_a_batch_is_the_one_set(
    classroom: Classroom,
) -> None:
    load_structure(classroom)
    with classroom.transaction() as session:
        upsert_people(session, [PersonRow("p-t2", "Bo Teacher", roles=frozenset({Role.TEACHER}))])
        upsert_enrolments(
            session,
            [
                EnrolmentRow("e-1", "cls-1", "p-t", EnrolmentRole.TEACHER, is_primary=True),
                EnrolmentRow("e-2", "cls-1", "p-t2", EnrolmentRole.TEACHER, is_primary=True),
                EnrolmentRow("e-3", "cls-2", "p-t2", EnrolmentRole.TEACHER, is_primary=True),
                EnrolmentRow(
                    "e-4", "cls-2", "p-t", EnrolmentRole.TEACHER, is_primary=True, active=False
                ),
            ],
        )
    assert _class(classroom, "cls-1").primary_teacher_id == _person_id(classroom, "p-t2")
    assert _class(classroom, "cls-2").primary_teacher_id == _person_id(classroom, "p-t2")
