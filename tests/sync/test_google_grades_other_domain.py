"""Grades after Google was connected again to ANOTHER Workspace domain: a class whose course is
still in the old domain is not pulled (neither asked for by its teacher nor in a pull of every
class) and its teacher's page shows no course; the connected domain's Classroom is never asked
for the old domain's course id. Two local Classrooms and the built-in SIS on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sislink.classroom import Actor, Classroom
from sislink.googleclassroom.emulator import RunningClassroom, running_classroom
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.sync import google_connection
from sislink.sync.google_grades import course_view, pull_grades
from sync.google_grades_world import build_grades_world, connect_google

ADMIN = Actor.system()
OTHER_SEED = 8  # another district name, so another domain


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def sis() -> Iterator[RunningProvider]:
    with running_provider(profile="generic-1.2", students=20) as running:
        yield running


@pytest.fixture(scope="module")
def old() -> Iterator[RunningClassroom]:
    with running_classroom(students=20) as running:
        yield running


@pytest.fixture(scope="module")
def new(old: RunningClassroom) -> Iterator[RunningClassroom]:
    with running_classroom(seed=OTHER_SEED, students=20) as running:
        assert running.domain != old.domain
        yield running


@pytest.mark.anyio
async def test_a_class_whose_course_is_in_the_old_domain_is_neither_pulled_nor_shown(
    sis: RunningProvider, classroom: Classroom, old: RunningClassroom, new: RunningClassroom
) -> None:
    g = await build_grades_world(sis, classroom, old)
    essay = g.add_work("Essay", points=20)
    g.grade(essay, g.emails[0], assigned=18, give_back=True)
    assert course_view(classroom, g.world.teacher, g.class_id)["course"] is not None

    google_connection.disconnect(classroom, ADMIN)
    connect_google(classroom, new)
    old_calls, new_calls = (
        sum(old.classroom.log.calls.values()),
        sum(new.classroom.log.calls.values()),
    )

    asked = pull_grades(classroom, g.world.teacher, class_ids=[g.class_id])
    (course,) = asked.courses
    assert course.refused is not None and course.failed is None
    assert "not in Classroom on the connected domain" in course.refused
    assert new.domain in course.refused and old.domain in course.refused
    assert asked.to_dict()["attention"]["count"] == 1
    assert pull_grades(classroom, ADMIN).courses == []  # every class: the old course left out

    view = course_view(classroom, g.world.teacher, g.class_id)
    assert view["course"] is None and view["last_pull"] is None
    assert g.marks() == {}  # nothing pulled
    assert sum(new.classroom.log.calls.values()) == new_calls  # never asked for the old course
    assert sum(old.classroom.log.calls.values()) == old_calls
