"""What an exported lineItem and result hold in the SIS, field by field, for every SIS profile:
dates, category, grading period, scoreDate; which coursework goes at all (published, not
opted out) and what opting out later does; and what the ledger keeps of the SIS's answers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from sislink.classroom import Classroom, open_classroom
from sislink.classroom.models import ExportRecord, GradingPeriod, Mark
from sislink.classroom.services import coursework
from sislink.classroom.services.time_zone import school_time_zone
from sislink.oneroster.models import LineItem
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.sync.export_report import ExportReport, Outcome
from sislink.sync.mark_export import export_class_marks, forget_ledger_for_class
from sislink.sync.mark_export_plan import CREATED, UPDATED
from sync.mark_export_world import World, build_world, sis_gradebook, sis_holds

PROFILES = ["generic-1.1", "generic-1.2", "infinite-campus", "skyward", "aspen", "aeries"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module", params=PROFILES)
def sis(request: pytest.FixtureRequest) -> Iterator[RunningProvider]:
    with running_provider(profile=request.param, students=60) as running:
        yield running


@pytest.fixture
def classroom(tmp_path: Path) -> Iterator[Classroom]:
    opened = open_classroom(f"sqlite:///{tmp_path / 'classroom.db'}")
    yield opened
    opened.close()


async def _export(world: World) -> ExportReport:
    async with world.client() as client:
        return await export_class_marks(world.classroom, client, world.teacher, world.class_id)


def _by_title(items: list[LineItem]) -> dict[str, LineItem]:
    return {li.title: li for li in items}


def _ledger(world: World) -> dict[tuple[str, int], str]:
    with world.classroom.session() as session:
        return {(r.kind, r.object_id): r.last_status for r in session.scalars(select(ExportRecord))}


@pytest.mark.anyio
async def test_line_items_carry_the_courseworks_dates_category_and_grading_period(
    sis: RunningProvider, classroom: Classroom
) -> None:
    world = await build_world(sis, classroom)
    first, second = world.facts.grading_periods[:2]
    due_early = world.due_in_period(0, days=2)
    due_late = world.due_in_period(1, days=4)
    assigned = due_late - timedelta(days=3, hours=2, minutes=30)
    world.add_coursework("Early", category="Homework", due=due_early)
    world.add_coursework("Late", category="Tests", due=due_late, assign_date=assigned)
    await _export(world)
    items, _ = await sis_gradebook(world)
    early, late = _by_title(items)["Early"], _by_title(items)["Late"]
    assert (late.assign_date, late.due_date) == (assigned, due_late)
    assert early.due_date == due_early
    # The teacher's category, by its sourcedId in the SIS class (not just any category).
    homework, tests = world.facts.category_titled("Homework"), world.facts.category_titled("Tests")
    assert homework != tests
    assert (early.category.sourced_id, late.category.sourced_id) == (homework, tests)
    # The grading period is the one that contains the due date.
    assert first.sourced_id != second.sourced_id
    assert early.grading_period is not None and late.grading_period is not None
    assert early.grading_period.sourced_id == first.sourced_id
    assert late.grading_period.sourced_id == second.sourced_id


@pytest.mark.anyio
async def test_a_grading_period_the_teacher_chose_wins_over_the_due_date(
    sis: RunningProvider, classroom: Classroom
) -> None:
    if sis.profile not in ("generic-1.1", "generic-1.2"):
        pytest.skip("one profile per version is enough for the teacher's choice")
    world = await build_world(sis, classroom)
    first, second = world.facts.grading_periods[:2]
    with classroom.transaction() as session:
        # The SIS's second grading period, as the roster import keeps it in the classroom.
        chosen = GradingPeriod(
            title=second.title,
            start_date=second.start_date,
            end_date=second.end_date,
            sis_sourced_id=second.sourced_id,
        )
        session.add(chosen)
        session.flush()
        chosen_id = chosen.id
    world.add_coursework("Chosen", due=world.due_in_period(0), grading_period_id=chosen_id)
    await _export(world)
    (item,), _ = await sis_gradebook(world)
    assert first.contains(item.due_date.date())
    assert item.grading_period is not None
    assert item.grading_period.sourced_id == second.sourced_id


@pytest.mark.anyio
async def test_skyward_files_coursework_without_a_category_under_assignments(
    sis: RunningProvider, classroom: Classroom
) -> None:
    if sis.profile != "skyward":
        pytest.skip("Skyward is the profile with a default category")
    world = await build_world(sis, classroom)
    assignments = world.facts.category_titled("Assignments")
    assert assignments is not None
    world.add_coursework("Uncategorised", category=None)
    world.add_coursework("Homework work", category="Homework")
    await _export(world)
    items, _ = await sis_gradebook(world)
    assert _by_title(items)["Uncategorised"].category.sourced_id == assignments
    assert _by_title(items)["Homework work"].category.sourced_id != assignments


@pytest.mark.anyio
async def test_the_score_date_is_the_day_the_mark_was_last_changed(
    sis: RunningProvider, classroom: Classroom
) -> None:
    world = await build_world(sis, classroom, students=2)
    work = world.add_coursework("Essay")
    old, new = world.students
    world.mark(work, old, score=4)
    world.mark(work, new, score=5)
    long_ago = datetime.combine(world.facts.grading_periods[0].start_date, time(9), tzinfo=UTC)
    with classroom.transaction() as session:
        mark = session.scalars(
            select(Mark).where(Mark.coursework_id == work, Mark.student_id == old)
        ).one()
        mark.updated_at = long_ago
    await _export(world)
    with classroom.session() as session:
        changed = session.scalars(
            select(Mark).where(Mark.coursework_id == work, Mark.student_id == new)
        ).one()
        # The school's day (the default zone is the server's).
        new_day = changed.updated_at.astimezone(school_time_zone(session).zone).date()
    (item,), results = await sis_gradebook(world)
    dates = {r.student.sourced_id: r.score_date for r in results[item.sourced_id]}
    assert dates == {world.sis_students[old]: long_ago.date(), world.sis_students[new]: new_day}


@pytest.mark.anyio
async def test_drafts_and_opted_out_coursework_stay_home_and_opting_out_later_deletes_it(
    sis: RunningProvider, classroom: Classroom
) -> None:
    world = await build_world(sis, classroom, students=3)
    draft = world.add_coursework("Draft work", publish=False)
    private = world.add_coursework("Practice", export_to_sis=False)
    kept = world.add_coursework("Kept")
    later = world.add_coursework("Opted out later")
    for work in (draft, private, kept, later):
        for student in world.students:
            world.mark(work, student, score=3)
    first = await _export(world)
    items, _ = await sis_gradebook(world)
    assert sorted(li.title for li in items) == ["Kept", "Opted out later"]
    reasons = {
        i.coursework_id: i.reason
        for i in first.items
        if i.kind == "lineItem" and i.outcome is Outcome.SKIPPED
    }
    assert reasons[draft].startswith("It is a draft")
    assert reasons[private].startswith("It is set not to go to the SIS")
    held = sis_holds(world)
    assert held == (2, 2 * len(world.students))

    with classroom.transaction() as session:
        coursework.edit_coursework(session, world.teacher, later, export_to_sis=False)
    second = await _export(world)
    gone = [i for i in second.items if i.outcome is Outcome.DELETED]
    assert second.writes == len(gone) == len(world.students) + 1
    assert {i.student_id for i in gone if i.kind == "result"} == set(world.students)
    assert all(i.coursework_id == later for i in gone)
    assert gone[-1].kind == "lineItem"  # after its results
    items, _ = await sis_gradebook(world)  # also fails on a result left behind
    assert [li.title for li in items] == ["Kept"]
    assert sis_holds(world) == (1, len(world.students))
    assert (await _export(world)).writes == 0


@pytest.mark.anyio
async def test_the_ledger_says_created_for_a_first_send_and_updated_after_it(
    sis: RunningProvider, classroom: Classroom
) -> None:
    """On every profile: the generic ones answer 201 to updates too, as 1EdTech's OpenAPI
    lists, so the SIS's status cannot say it; the ledger's own earlier entry does."""
    world = await build_world(sis, classroom, students=3)
    work = world.add_coursework("Essay")
    for student in world.students:
        world.mark(work, student, score=3)
    await _export(world)
    first = _ledger(world)
    assert len(first) == 1 + len(world.students)
    assert set(first.values()) == {CREATED}
    changed = world.students[0]
    world.mark(work, changed, score=4)
    await _export(world)
    second = _ledger(world)
    updated = {key for key, status in second.items() if status == UPDATED}
    assert len(updated) == 1
    ((kind, mark_id),) = updated
    with classroom.session() as session:
        mark = session.get(Mark, mark_id)
        assert kind == "result" and mark is not None and mark.student_id == changed
    # With the ledger lost, everything is sent again to the same ids (the SIS updates it all);
    # the new ledger has no earlier entry, so it starts again at "created".
    assert forget_ledger_for_class(classroom, world.class_id) > 0
    assert (await _export(world)).writes == len(first)
    assert set(_ledger(world).values()) == {CREATED}
    world.mark(work, changed, score=5)
    await _export(world)
    assert sorted(_ledger(world).values()).count(UPDATED) == 1
