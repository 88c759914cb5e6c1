"""People: emails unique whatever their case, plain messages, only admins add people."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from sqlalchemy import func, select

from sislink.classroom.db import Classroom
from sislink.classroom.errors import Conflict, InvalidInput, PermissionDenied
from sislink.classroom.models import Person, Role
from sislink.classroom.services import people

if TYPE_CHECKING:
    from ..conftest import School


def test_another_person_with_the_same_email_in_other_case_is_refused(
    classroom: Classroom, school: School
) -> None:
    with (
        pytest.raises(Conflict, match="Another person already uses this email"),
        classroom.transaction() as session,
    ):
        people.create_person(session, school.admin, name="Ada Two", email="ADA@School.Example")
    with classroom.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Person)) == 5


def test_changing_to_an_email_in_use_is_refused(classroom: Classroom, school: School) -> None:
    assert school.ada.person_id is not None
    with (
        pytest.raises(Conflict, match="already uses this email"),
        classroom.transaction() as session,
    ):
        people.change_email(session, school.ada, school.ada.person_id, "Brian@school.example")
    with classroom.transaction() as session:
        changed = people.change_email(
            session, school.ada, school.ada.person_id, "Ada.L@School.example"
        )
        assert changed.email == "Ada.L@School.example"
        found = people.find_person_by_email(session, "ada.l@school.example")
        assert found is not None and found.id == school.ada.person_id


@pytest.mark.parametrize("bad", ["", "no-at-sign", "a@b", "two words@school.example"])
def test_malformed_emails_are_refused_with_an_example(
    classroom: Classroom, school: School, bad: str
) -> None:
    with pytest.raises(InvalidInput, match="email"), classroom.transaction() as session:
        people.create_person(session, school.admin, name="X", email=bad)


def test_only_administrators_add_people_or_change_roles(
    classroom: Classroom, school: School
) -> None:
    with (
        pytest.raises(PermissionDenied, match="Only an administrator may add people"),
        classroom.transaction() as session,
    ):
        people.create_person(session, school.ada, name="New", email="new@school.example")
    assert school.brian.person_id is not None
    with classroom.transaction() as session:
        changed = people.set_roles(
            session, school.admin, school.brian.person_id, [Role.TEACHER, Role.ADMIN]
        )
        assert changed.roles == {Role.TEACHER, Role.ADMIN}


def test_a_person_is_found_by_email_or_by_sis_identifier_and_never_guessed(
    classroom: Classroom,
) -> None:
    from sislink.classroom.errors import NotFound
    from sislink.classroom.services.access import Actor

    system = Actor.system()
    with classroom.transaction() as session:
        ann = people.create_person(
            session, system, name="Ann", email="ann@school.example", roles=[Role.STUDENT]
        )
        ann.sis_identifier, ann.sis_sourced_id = "1001", "u-ann"
        # Two people the SIS gave no email (and one identifier), as roster imports keep them.
        for name, identifier, sourced_id in (("Bo", "2002", "u-bo"), ("Cy", "2002", "u-cy")):
            session.add(
                Person(
                    name=name,
                    is_student=True,
                    sis_identifier=identifier,
                    sis_sourced_id=sourced_id,
                )
            )
    with classroom.transaction() as session:
        assert people.find_person(session, " ANN@school.example ").name == "Ann"
        assert people.find_person(session, "1001").name == "Ann"
        assert people.find_person(session, "u-bo").name == "Bo"
        with pytest.raises(InvalidInput, match=r"'2002' is the SIS identifier of 2 people"):
            people.find_person(session, "2002")
        with pytest.raises(NotFound, match="No person has the email or SIS identifier '9'"):
            people.find_person(session, "9")
        with pytest.raises(NotFound, match="No teacher has the email or SIS identifier"):
            people.find_person(session, "1001", role=Role.TEACHER)


def test_an_email_that_is_also_another_persons_identifier_is_ambiguous_not_guessed(
    classroom: Classroom,
) -> None:
    from sislink.classroom.errors import NotFound
    from sislink.classroom.services.access import Actor

    system = Actor.system()
    with classroom.transaction() as session:
        people.create_person(
            session, system, name="Ann", email="ann@school.example", roles=[Role.STUDENT]
        )
        people.create_person(
            session, system, name="Tom", email="tom@school.example", roles=[Role.TEACHER]
        )
        # Bo's SIS identifier is Ann's email, and Cy's is the teacher Tom's.
        session.add(Person(name="Bo", is_student=True, sis_identifier="ann@school.example"))
        session.add(Person(name="Cy", is_student=True, sis_identifier="tom@school.example"))
    with classroom.transaction() as session:
        with pytest.raises(InvalidInput, match="one person's email and another's SIS identifier"):
            people.find_person(session, "ann@school.example", role=Role.STUDENT)
        # Tom holds the email but is no student: not found, and Cy is not picked instead.
        with pytest.raises(NotFound, match="No student has the email or SIS identifier"):
            people.find_person(session, "tom@school.example", role=Role.STUDENT)
        assert people.find_person(session, "tom@school.example", role=Role.TEACHER).name == "Tom"


def test_a_class_student_is_found_only_among_the_class_and_others_are_never_named(
    classroom: Classroom,
) -> None:
    from sislink.classroom.errors import NotFound
    from sislink.classroom.models import EnrolmentRole
    from sislink.classroom.services import classes
    from sislink.classroom.services.access import Actor

    system = Actor.system()
    with classroom.transaction() as session:
        teacher = people.create_person(
            session, system, name="Tia", email="tia@school.example", roles=[Role.TEACHER]
        )
        ann = people.create_person(
            session, system, name="Ann", email="ann@school.example", roles=[Role.STUDENT]
        )
        ann.sis_identifier, ann.sis_sourced_id = "1001", "u-ann"
        una = people.create_person(
            session, system, name="Una Other", email="una@school.example", roles=[Role.STUDENT]
        )
        una.sis_identifier, una.sis_sourced_id = "1002", "u-una"
        # Two people outside the class share an identifier with nobody in it.
        for name, sourced_id in (("Bo", "u-bo"), ("Cy", "u-cy")):
            session.add(
                Person(
                    name=name,
                    email=f"{name.lower()}@school.example",
                    is_student=True,
                    sis_identifier="2002",
                    sis_sourced_id=sourced_id,
                )
            )
        taught = classes.create_class(session, Actor.of(teacher), title="Maths", section="7")
        classes.enrol(session, Actor.of(teacher), taught.id, ann.id, EnrolmentRole.STUDENT)
        class_id = taught.id
    with classroom.transaction() as session:
        for named in (" ANN@school.example ", "1001", "u-ann"):
            assert people.find_student_of_class(session, class_id, named).name == "Ann"
        for named in ("una@school.example", "1002", "u-una", "2002", "bo@school.example"):
            with pytest.raises(NotFound) as refused:
                people.find_student_of_class(session, class_id, named)
            said = str(refused.value)
            assert f"No student of this class is {named!r}" in said
            for outsider in ("Una", "una@", "Bo", "Cy"):
                assert outsider not in said.replace(named, "")
