"""Fixtures for classroom tests: every store test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from sislink.classroom.db import Classroom, normalise_database_url, open_classroom
from sislink.classroom.models import EnrolmentRole, Role
from sislink.classroom.secrets import SecretBox
from sislink.classroom.services import classes, people
from sislink.classroom.services.access import Actor

POSTGRES_URL_VARIABLE = "SISLINK_TEST_POSTGRES_URL"


def postgres_url_or_skip() -> str:
    """The test PostgreSQL URL; skip locally without one, but fail in CI (CI=true)."""
    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if url:
        return url
    message = f"{POSTGRES_URL_VARIABLE} is not set, so the PostgreSQL cases cannot run"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI must run them)")
    pytest.skip(message)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database: a SQLite file in tmp_path, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'classroom.db'}"
        return
    base_url = normalise_database_url(postgres_url_or_skip())
    schema = f"test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        # Each test gets its own schema: everything it creates goes there, then is dropped.
        scoped = base_url.update_query_dict({"options": f"-csearch_path={schema}"})
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def secret_box() -> SecretBox:
    return SecretBox.generate()


@pytest.fixture
def classroom(database_url: str, secret_box: SecretBox) -> Iterator[Classroom]:
    """A migrated, empty classroom on each database."""
    opened = open_classroom(database_url, secret_box=secret_box)
    try:
        yield opened
    finally:
        opened.close()


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
