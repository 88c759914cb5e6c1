"""Mark export pre-flight: each reason an item (or the whole export) cannot go to the SIS is
found before anything is sent and said in a teacher's words."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from sislink.classroom import Actor, Classroom, open_classroom
from sislink.classroom.models import EnrolmentRole, Mark, Person, Role
from sislink.classroom.services import classes, connections, coursework, organisation, people
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.sync.class_link import link_class, unlink_class
from sislink.sync.export_report import ExportReport, ItemReport, Outcome
from sislink.sync.mark_export import export_class_marks
from sislink.sync.preflight import ExportRefused, Refusal
from sync.mark_export_world import World, build_world, sis_gradebook


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def sis() -> Iterator[RunningProvider]:
    with running_provider(profile="generic-1.2", students=60) as running:
        yield running


@pytest.fixture
def classroom(tmp_path: Path) -> Iterator[Classroom]:
    opened = open_classroom(f"sqlite:///{tmp_path / 'classroom.db'}")
    yield opened
    opened.close()


async def _export(world: World, actor: Actor | None = None) -> ExportReport:
    async with world.client() as client:
        return await export_class_marks(
            world.classroom, client, actor or world.teacher, world.class_id
        )


def _item(report: ExportReport, coursework_id: int, kind: str = "lineItem") -> ItemReport:
    return next(i for i in report.items if i.coursework_id == coursework_id and i.kind == kind)


def _work(world: World, title: str, **values: object) -> int:
    with world.classroom.transaction() as session:
        return coursework.create_coursework(
            session,
            world.teacher,
            world.class_id,
            title=title,
            publish=True,
            **values,  # type: ignore[arg-type]
        ).id


@pytest.mark.anyio
async def test_coursework_without_a_due_date_is_skipped_and_says_why(
    sis: RunningProvider, classroom: Classroom
) -> None:
    world = await build_world(sis, classroom)
    work = _work(world, "Reading log", max_points=5, category_id=world.categories["Homework"])
    world.mark(work, world.students[0], score=4)
    report = await _export(world)
    item = _item(report, work)
    assert item.outcome is Outcome.SKIPPED and "no due date" in item.reason
    assert _item(report, work, "result").outcome is Outcome.SKIPPED
    assert report.writes == 0


@pytest.mark.anyio
async def test_a_due_date_outside_every_grading_period_is_skipped(
    sis: RunningProvider, classroom: Classroom
) -> None:
    world = await build_world(sis, classroom)
    work = world.add_coursework("Summer work", due=datetime(2040, 7, 1, tzinfo=UTC))
    item = _item(await _export(world), work)
    assert item.outcome is Outcome.SKIPPED
    assert "2040-07-01 is outside every grading period" in item.reason


@pytest.mark.anyio
async def test_no_category_and_no_default_is_skipped(
    sis: RunningProvider, classroom: Classroom
) -> None:
    world = await build_world(sis, classroom)
    work = world.add_coursework("Uncategorised", category=None)
    item = _item(await _export(world), work)
    assert item.outcome is Outcome.SKIPPED
    assert "no category and the SIS has no default category" in item.reason


@pytest.mark.anyio
async def test_a_category_the_sis_class_lacks_is_skipped_naming_the_choices(
    sis: RunningProvider, classroom: Classroom
) -> None:
    world = await build_world(sis, classroom)
    with classroom.transaction() as session:
        labs = coursework.create_category(session, world.teacher, world.class_id, title="Labs")
        world.categories["Labs"] = labs.id
    work = world.add_coursework("Titration", category="Labs")
    item = _item(await _export(world), work)
    assert item.outcome is Outcome.SKIPPED
    assert "'Labs' is not one of the SIS class's categories" in item.reason
    assert "Homework" in item.reason


@pytest.mark.anyio
async def test_a_long_title_is_sent_shortened_with_the_full_title_in_the_description(
    sis: RunningProvider, classroom: Classroom
) -> None:
    world = await build_world(sis, classroom)
    with classroom.transaction() as session:
        organisation.update_organisation(
            session, Actor.system(), settings={"sis_title_max_length": 20}
        )
    title = "An unusually long title for a piece of coursework"
    work = world.add_coursework(title, description="Bring a pencil.")
    item = _item(await _export(world), work)
    assert item.outcome is Outcome.EXPORTED
    assert "sent shortened" in item.reason and f"{len(title)} characters" in item.reason
    (line_item,), _ = await sis_gradebook(world)
    assert len(line_item.title) == 20 and title.startswith(line_item.title[:-1])
    assert line_item.description == f"Full title: {title}\n\nBring a pencil."


@pytest.mark.anyio
async def test_a_student_not_in_the_sis_class_is_skipped_and_one_matched_by_identifier_goes(
    sis: RunningProvider, classroom: Classroom
) -> None:
    world = await build_world(sis, classroom, students=3)
    # The third SIS student is known here under another email, but with their SIS identifier.
    third = world.students[2]
    sis_record = sis.store.get("user", world.sis_students[third])
    assert sis_record is not None and sis_record.get("identifier")
    with classroom.transaction() as session:
        person = session.get(Person, third)
        assert person is not None
        people.change_email(session, Actor.system(), third, "renamed@home.example")
        person.sis_identifier = sis_record["identifier"]
        stranger = people.create_person(
            session,
            Actor.system(),
            name="New Pupil",
            email="new.pupil@school.example",
            roles=[Role.STUDENT],
        )
        classes.enrol(session, Actor.system(), world.class_id, stranger.id, EnrolmentRole.STUDENT)
    work = world.add_coursework("Quiz")
    world.mark(work, third, score=6)
    world.mark(work, stranger.id, score=7)
    report = await _export(world)
    results = {i.student_id: i for i in report.items if i.kind == "result"}
    assert results[third].outcome is Outcome.EXPORTED
    assert results[stranger.id].outcome is Outcome.SKIPPED
    assert "New Pupil (new.pupil@school.example) is not a student of the SIS class" in (
        results[stranger.id].reason
    )


@pytest.mark.anyio
async def test_a_score_that_is_not_a_number_is_skipped(
    sis: RunningProvider, classroom: Classroom
) -> None:
    world = await build_world(sis, classroom)
    work = world.add_coursework("Quiz")
    world.mark(work, world.students[0], score=5)
    with classroom.transaction() as session:
        mark = session.scalars(select(Mark).where(Mark.coursework_id == work)).one()
        mark.score = math.inf  # written around the services, as a broken import might
    item = _item(await _export(world), work, "result")
    assert item.outcome is Outcome.SKIPPED and "is not a number" in item.reason


@pytest.mark.anyio
async def test_a_class_not_linked_is_refused_before_anything_is_sent(
    sis: RunningProvider, classroom: Classroom
) -> None:
    world = await build_world(sis, classroom)
    world.add_coursework("Quiz")
    unlink_class(classroom, world.teacher, world.class_id)
    with pytest.raises(ExportRefused, match="is not linked to a SIS class") as refused:
        await _export(world)
    assert refused.value.reason is Refusal.CLASS_NOT_LINKED
    assert (await sis_gradebook(world))[0] == []


@pytest.mark.anyio
async def test_permission_off_refuses_teachers_but_not_administrators(
    sis: RunningProvider, classroom: Classroom
) -> None:
    world = await build_world(sis, classroom)
    world.add_coursework("Quiz")
    with classroom.transaction() as session:
        connections.set_teacher_export(session, Actor.system(), False)
    with pytest.raises(ExportRefused, match="switched off for teachers") as refused:
        await _export(world)
    assert refused.value.reason is Refusal.PERMISSION_OFF
    assert (await sis_gradebook(world))[0] == []
    assert (await _export(world, Actor.system())).writes == 1


@pytest.mark.anyio
async def test_a_disconnected_sis_refuses_the_export(
    sis: RunningProvider, classroom: Classroom
) -> None:
    world = await build_world(sis, classroom)
    world.add_coursework("Quiz")
    client = world.client()  # opened before the disconnect: the check is on the classroom side
    with classroom.transaction() as session:
        connections.disconnect(session, Actor.system())
    async with client:
        with pytest.raises(ExportRefused, match="disconnected from the SIS") as refused:
            await export_class_marks(classroom, client, world.teacher, world.class_id)
    assert refused.value.reason is Refusal.DISCONNECTED


@pytest.mark.anyio
async def test_another_teachers_class_is_refused(
    sis: RunningProvider, classroom: Classroom
) -> None:
    world = await build_world(sis, classroom)
    world.add_coursework("Quiz")
    with classroom.transaction() as session:
        other = people.create_person(
            session,
            Actor.system(),
            name="Other Teacher",
            email="other@school.example",
            roles=[Role.TEACHER],
        )
    with pytest.raises(ExportRefused, match="You do not teach") as refused:
        await _export(world, Actor.of(other))
    assert refused.value.reason is Refusal.NOT_YOUR_CLASS


def _teachers_first_class(sis: RunningProvider) -> dict[str, Any]:
    """The SIS teacher's class that `build_world` links (the first offered)."""
    teacher = next(u for u in sis.store.iter_all("user") if u.get("email") == sis.teacher_email)
    taught = {
        e["class"]["sourcedId"]
        for e in sis.store.iter_all("enrollment")
        if e["user"]["sourcedId"] == teacher["sourcedId"] and e["status"] == "active"
    }
    return min(
        (c for c in sis.store.iter_all("class") if c["sourcedId"] in taught),
        key=lambda c: (c["title"], c["sourcedId"]),
    )


@pytest.mark.anyio
async def test_a_sis_class_without_the_profiles_default_category_says_so_and_names_the_choices(
    tmp_path: Path,
) -> None:
    # Skyward files a lineItem without a category under "Assignments"; this class has none.
    with running_provider(profile="skyward", students=60) as skyward:
        for category in list(skyward.store.iter_all("category")):
            if category["title"] == "Assignments":
                skyward.store.put("category", {**category, "status": "tobedeleted"})
        classroom = open_classroom(f"sqlite:///{tmp_path / 'skyward.db'}")
        try:
            world = await build_world(skyward, classroom)
            work = world.add_coursework("Uncategorised", category=None)
            report = await _export(world)
        finally:
            classroom.close()
    item = _item(report, work)
    assert item.outcome is Outcome.SKIPPED
    assert item.reason == (
        "It has no category, and the SIS class has no category 'Assignments', the default "
        "for Skyward: choose one of: Homework, Tests."
    )
    assert report.writes == 0


@pytest.mark.anyio
async def test_a_class_without_grading_periods_on_oneroster_1_1_is_told_before_anything_is_sent(
    tmp_path: Path,
) -> None:
    # OneRoster 1.1 requires a lineItem's gradingPeriod: a class whose terms have no grading
    # periods cannot take one, and the teacher is told so instead of the SIS refusing it.
    with running_provider(profile="generic-1.1", students=60) as sis_1_1:
        terms = {t["sourcedId"] for t in _teachers_first_class(sis_1_1)["terms"]}
        for period in list(sis_1_1.store.iter_all("academicSession")):
            if period["type"] == "gradingPeriod" and period["parent"]["sourcedId"] in terms:
                sis_1_1.store.delete("academicSession", period["sourcedId"])
        classroom = open_classroom(f"sqlite:///{tmp_path / 'one-one.db'}")
        try:
            world = await build_world(sis_1_1, classroom)
            assert world.facts.grading_periods == ()
            work = world.add_coursework("Quiz", due=datetime(2026, 9, 15, 12, tzinfo=UTC))
            world.mark(work, world.students[0], score=7)
            report = await _export(world)
            sent = sis_1_1.store.count("lineItem")
        finally:
            classroom.close()
    item = _item(report, work)
    assert item.outcome is Outcome.SKIPPED
    assert item.reason.startswith(
        "The SIS class has no grading periods, and OneRoster 1.1 SIS (OAuth 1.0a) needs one "
        "for every assignment: ask the SIS administrator"
    )
    assert report.writes == 0 and sent == 0


@pytest.mark.anyio
async def test_a_class_linked_with_another_sis_is_refused_until_linked_again(
    sis: RunningProvider, classroom: Classroom
) -> None:
    # An administrator connects to another SIS (another district): the class's link, made with
    # the first SIS, names a class of that SIS, not of this one.
    world = await build_world(sis, classroom)
    world.add_coursework("Quiz")
    with classroom.transaction() as session:
        old = connections.current_connection(session)
        assert old is not None
        new = connections.save_connection(
            session,
            Actor.system(),
            classroom.secret_box,
            partner=old.partner,
            version=old.version,
            host_url=sis.host_url,
            access_key=sis.client_id,
            secret_code=sis.client_secret,
            token_url=sis.token_url or None,
        )
        connections.mark_authorised(
            session, Actor.system(), new.id, district_sourced_id="another-district"
        )
    with pytest.raises(
        ExportRefused, match="is linked to a class of the SIS sislink was connected to before"
    ) as refused:
        await _export(world)
    assert refused.value.reason is Refusal.CLASS_NOT_LINKED
    assert (await sis_gradebook(world))[0] == []
    async with world.client() as client:
        await link_class(classroom, client, world.teacher, world.class_id, world.sis_class_id)
    assert (await _export(world)).writes == 1
