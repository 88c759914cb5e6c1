"""Mark export in the school's time zone: a due date late in the evening of a grading period's
last day is in that grading period, as the teacher sees it, although it is the next day in UTC
(Google Classroom's 11:59 PM in Chicago is 05:59 UTC the day after); a mark changed in the
evening has that evening's day as its scoreDate."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from sislink.classroom import Actor, Classroom, open_classroom
from sislink.classroom.models import Mark
from sislink.classroom.services.time_zone import set_school_time_zone
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.sync.export_report import ExportOutcome
from sislink.sync.mark_export import export_class_marks
from sync.mark_export_world import build_world, sis_gradebook

CHICAGO = ZoneInfo("America/Chicago")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def sis() -> Iterator[RunningProvider]:
    with running_provider(profile="generic-1.2", students=10) as running:
        yield running


@pytest.fixture
def classroom(tmp_path: Path) -> Iterator[Classroom]:
    opened = open_classroom(f"sqlite:///{tmp_path / 'classroom.db'}")
    with opened.transaction() as session:
        set_school_time_zone(session, Actor.system(), "America/Chicago")
    yield opened
    opened.close()


@pytest.mark.anyio
async def test_coursework_due_on_a_periods_last_evening_goes_in_that_period(
    sis: RunningProvider, classroom: Classroom
) -> None:
    world = await build_world(sis, classroom, students=1)
    first, second = world.facts.grading_periods[:2]
    assert (second.start_date - first.end_date).days == 1
    # 9 PM in Chicago on the first period's last day: the next day (the second period) in UTC.
    due = datetime.combine(first.end_date, time(21), tzinfo=CHICAGO).astimezone(UTC)
    assert second.contains(due.date())
    work = world.add_coursework("Last evening", due=due)
    world.mark(work, world.students[0], score=7)
    async with world.client() as client:
        report = await export_class_marks(classroom, client, world.teacher, world.class_id)
    assert report.outcome is ExportOutcome.SUCCEEDED
    (item,), _ = await sis_gradebook(world)
    assert item.due_date == due
    assert item.grading_period is not None
    assert item.grading_period.sourced_id == first.sourced_id


@pytest.mark.anyio
async def test_a_mark_changed_in_the_evening_has_that_days_score_date(
    sis: RunningProvider, classroom: Classroom
) -> None:
    world = await build_world(sis, classroom, students=1)
    work = world.add_coursework("Essay")
    student = world.students[0]
    world.mark(work, student, score=6)
    day = world.facts.grading_periods[0].start_date
    evening = datetime.combine(day, time(20), tzinfo=CHICAGO).astimezone(UTC)
    assert evening.date() != day
    with classroom.transaction() as session:
        mark = session.scalars(
            select(Mark).where(Mark.coursework_id == work, Mark.student_id == student)
        ).one()
        mark.updated_at = evening
    async with world.client() as client:
        await export_class_marks(classroom, client, world.teacher, world.class_id)
    (item,), results = await sis_gradebook(world)
    (result,) = results[item.sourced_id]
    assert result.score_date == day


@pytest.mark.anyio
async def test_changing_the_schools_time_zone_plans_the_next_export_again(
    sis: RunningProvider, classroom: Classroom
) -> None:
    with classroom.transaction() as session:
        set_school_time_zone(session, Actor.system(), "UTC")
    world = await build_world(sis, classroom, students=1)
    first, second = world.facts.grading_periods[:2]
    due = datetime.combine(first.end_date, time(21), tzinfo=CHICAGO).astimezone(UTC)
    world.add_coursework("Last evening", due=due)
    async with world.client() as client:
        before = await export_class_marks(classroom, client, world.teacher, world.class_id)
        assert before.outcome is ExportOutcome.SUCCEEDED
        (item,), _ = await sis_gradebook(world)
        assert item.grading_period is not None
        assert item.grading_period.sourced_id == second.sourced_id  # 02:00 UTC, the next day
        with classroom.transaction() as session:
            set_school_time_zone(session, Actor.system(), "America/Chicago")
        after = await export_class_marks(classroom, client, world.teacher, world.class_id)
    assert after.writes == 1
    (item,), _ = await sis_gradebook(world)
    assert item.grading_period is not None
    assert item.grading_period.sourced_id == first.sourced_id
