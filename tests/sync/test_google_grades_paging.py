"""Paging through Classroom's lists in a grade pull when Classroom (or a proxy before it) gives
the same nextPageToken again and again: the pull stops paging that list at the first repeat and
says so for the class, instead of asking for the same page for ever. The local Classroom and
the built-in SIS on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sislink.classroom import Actor, Classroom
from sislink.googleclassroom.emulator import RunningClassroom, running_classroom
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.sync.google_grades import pull_grades
from sync.google_grades_world import build_grades_world

SUBMISSIONS = "courses.courseWork.studentSubmissions.list"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def sis() -> Iterator[RunningProvider]:
    with running_provider(profile="generic-1.2", students=20) as running:
        yield running


@pytest.fixture(scope="module")
def local() -> Iterator[RunningClassroom]:
    with running_classroom(students=20) as running:
        yield running


@pytest.mark.anyio
async def test_a_list_whose_next_page_token_repeats_stops_and_the_class_says_why(
    sis: RunningProvider, classroom: Classroom, local: RunningClassroom
) -> None:
    g = await build_grades_world(sis, classroom, local)
    quiz = g.add_work("Quiz", points=10)
    g.grade(quiz, g.emails[0], assigned=8, give_back=True)
    local.classroom.repeat_page_token(g.course_id, SUBMISSIONS, times=50)
    asked_before = local.classroom.log.calls[SUBMISSIONS]
    try:
        report = pull_grades(classroom, Actor.system(), class_ids=[g.class_id])
    finally:
        local.classroom.stuck_paging.clear()

    assert local.classroom.log.calls[SUBMISSIONS] - asked_before == 2  # the repeat is the last
    (pulled,) = report.courses
    assert pulled.failed is not None and "same nextPageToken twice" in pulled.failed
    assert g.marks() == {}  # nothing of a list read in part is applied

    # Classroom pages properly again: the next pull takes the grade.
    again = pull_grades(classroom, Actor.system(), class_ids=[g.class_id])
    assert again.courses[0].failed is None
    assert g.marks()[("Quiz", g.emails[0])].score == 8
