"""Work due at 24:00 in Classroom: Google's TimeOfDay lets an API take "24:00" (the end of the
day), which Python's time of day refuses. The grade pull takes it as the next day's 00:00 UTC;
before, it stopped the whole pull. The local Classroom and the built-in SIS on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from sislink.classroom import Actor, Classroom
from sislink.classroom.models import Coursework
from sislink.googleclassroom.emulator import RunningClassroom, running_classroom
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.sync.google_grades import due_of, pull_grades
from sync.google_grades_world import build_grades_world


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
async def test_work_due_at_24_00_is_due_at_the_start_of_the_next_day(
    sis: RunningProvider, classroom: Classroom, local: RunningClassroom
) -> None:
    g = await build_grades_world(sis, classroom, local)
    day = g.ahead()
    late_night = g.add_work("Essay", points=10, due=day, dueTime={"hours": 24, "minutes": 0})
    g.grade(late_night, g.emails[0], assigned=9, give_back=True)

    report = pull_grades(classroom, Actor.system(), class_ids=[g.class_id])

    (pulled,) = report.courses
    assert pulled.failed is None and pulled.coursework["created"] == 1
    with classroom.session() as session:
        due = session.scalars(
            select(Coursework.due_date).where(Coursework.class_id == g.class_id)
        ).one()
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
    assert due == midnight
    assert g.marks()[("Essay", g.emails[0])].score == 9


def test_the_end_of_the_last_day_a_date_can_hold_is_that_day_and_past_24_00_is_no_time() -> None:
    """9999-12-31 at 24:00 cannot be the next day (there is none for Python): the due day
    itself, not an OverflowError that would stop the whole pull. 24:30 is no time of day."""
    last = {"dueDate": {"year": 9999, "month": 12, "day": 31}, "dueTime": {"hours": 24}}
    assert due_of(last) == datetime(9999, 12, 31, tzinfo=UTC)
    past = {
        "dueDate": {"year": 2026, "month": 3, "day": 9},
        "dueTime": {"hours": 24, "minutes": 30},
    }
    assert due_of(past) == datetime(2026, 3, 9, tzinfo=UTC)
    end = {"dueDate": {"year": 2026, "month": 3, "day": 9}, "dueTime": {"hours": 24}}
    assert due_of(end) == datetime(2026, 3, 10, tzinfo=UTC)
