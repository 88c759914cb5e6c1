"""Fixtures for classroom tests (the database fixtures, on SQLite and PostgreSQL, are in tests/conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from sislink.classroom.db import Classroom
from sislink.classroom.models import EnrolmentRole, Role
from sislink.classroom.services import classes, people
from sislink.classroom.services.access import Actor

# --- people and classes most tests need ---------------------------------------------------


@dataclass(frozen=True)
class School:
    """A small school: an admin, two teachers, two students, and one class taught by Ada."""

    admin: Actor
    ada: Actor
    brian: Actor
    student_ids: tuple[int, int]
    class_id: int


@pytest.fixture
def school(classroom: Classroom) -> School:
    system = Actor.system()
    with classroom.transaction() as session:
        admin = people.create_person(
            session, system, name="Alex Admin", email="alex@school.example", roles=[Role.ADMIN]
        )
        ada = people.create_person(
            session, system, name="Ada Teacher", email="ada@school.example", roles=[Role.TEACHER]
        )
        brian = people.create_person(
            session,
            system,
            name="Brian Teacher",
            email="brian@school.example",
            roles=[Role.TEACHER],
        )
        students = [
            people.create_person(
                session,
                system,
                name=name,
                email=f"{name.lower()}@school.example",
                roles=[Role.STUDENT],
            )
            for name in ("Sam", "Tess")
        ]
        taught = classes.create_class(session, Actor.of(ada), title="Maths 7", section="7B")
        for student in students:
            classes.enrol(session, Actor.of(ada), taught.id, student.id, EnrolmentRole.STUDENT)
        return School(
            admin=Actor.of(admin),
            ada=Actor.of(ada),
            brian=Actor.of(brian),
            student_ids=(students[0].id, students[1].id),
            class_id=taught.id,
        )
