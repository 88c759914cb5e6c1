"""Relinking a class to another SIS class: nothing of the old SIS class (a category, a grading
period) is sent to the new one; what the new SIS class lacks is reported, naming the choices."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from sislink.classroom import Classroom, open_classroom
from sislink.classroom.models import Category, GradingPeriod
from sislink.classroom.services import coursework
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.sync import class_link
from sislink.sync.class_link import SisClassFacts
from sislink.sync.export_report import ExportReport, ItemReport, Outcome
from sislink.sync.mark_export import export_class_marks
from sync.mark_export_world import World, build_world, sis_gradebook

OLD_TESTS = "cat-first-class-tests"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sis() -> Iterator[RunningProvider]:
    # One SIS per test: the tests change the SIS's categories.
    with running_provider(profile="generic-1.2", students=60) as running:
        yield running


@pytest.fixture
def classroom(tmp_path: Path) -> Iterator[Classroom]:
    opened = open_classroom(f"sqlite:///{tmp_path / 'classroom.db'}")
    yield opened
    opened.close()


def _teachers_classes(sis: RunningProvider) -> list[str]:
    """The SIS teacher's classes, in the order they are offered for linking."""
    teacher = next(u for u in sis.store.iter_all("user") if u.get("email") == sis.teacher_email)
    taught = {
        e["class"]["sourcedId"]
        for e in sis.store.iter_all("enrollment")
        if e["user"]["sourcedId"] == teacher["sourcedId"] and e["status"] == "active"
    }
    found = [c for c in sis.store.iter_all("class") if c["sourcedId"] in taught]
    return [c["sourcedId"] for c in sorted(found, key=lambda c: (c["title"], c["sourcedId"]))]


def _only_the_first_class_has_tests(sis: RunningProvider) -> tuple[str, str]:
    """ "Tests" becomes a category of the teacher's first class only (1.2 categories are per
    class); their second class has Homework and Assignments. Returns both classes."""
    first, second, *_ = _teachers_classes(sis)
    for category in list(sis.store.iter_all("category")):
        if category["title"] == "Tests":
            sis.store.put("category", {**category, "status": "tobedeleted"})
    sis.store.put(
        "category",
        {
            "sourcedId": OLD_TESTS,
            "status": "active",
            "dateLastModified": "2026-08-01T12:00:00.000Z",
            "title": "Tests",
            "class": {"sourcedId": first, "type": "class"},
        },
    )
    return first, second


async def _relink(world: World, sis_class_id: str) -> World:
    async with world.client() as client:
        facts = await class_link.link_class(
            world.classroom, client, world.teacher, world.class_id, sis_class_id
        )
    return replace(world, sis_class_id=sis_class_id, facts=facts)


async def _export(world: World) -> ExportReport:
    async with world.client() as client:
        return await export_class_marks(world.classroom, client, world.teacher, world.class_id)


def _item(report: ExportReport, coursework_id: int) -> ItemReport:
    return next(
        i for i in report.items if i.coursework_id == coursework_id and i.kind == "lineItem"
    )


def _sis_id_of(world: World, title: str) -> str | None:
    with world.classroom.session() as session:
        return session.scalars(
            select(Category.sis_sourced_id).where(
                Category.class_id == world.class_id, Category.title == title
            )
        ).one()


@pytest.mark.anyio
async def test_after_a_relink_a_category_the_new_sis_class_lacks_is_reported_not_sent(
    sis: RunningProvider, classroom: Classroom
) -> None:
    first, second = _only_the_first_class_has_tests(sis)
    world = await build_world(sis, classroom)
    assert world.sis_class_id == first and _sis_id_of(world, "Tests") == OLD_TESTS
    world = await _relink(world, second)
    assert _sis_id_of(world, "Tests") is None  # forgotten: the new SIS class has no "Tests"
    assert _sis_id_of(world, "Homework") == world.facts.category_titled("Homework")
    unit_test = world.add_coursework("Unit test", category="Tests")
    worksheet = world.add_coursework("Worksheet", category="Homework")
    report = await _export(world)
    skipped = _item(report, unit_test)
    assert skipped.outcome is Outcome.SKIPPED
    assert "Its category 'Tests' is not one of the SIS class's categories" in skipped.reason
    assert "Homework" in skipped.reason and "Assignments" in skipped.reason
    assert _item(report, worksheet).outcome is Outcome.EXPORTED
    (line_item,), _ = await sis_gradebook(world)
    assert line_item.title == "Worksheet"
    assert line_item.category is not None
    assert line_item.category.sourced_id == world.facts.category_titled("Homework")


@pytest.mark.anyio
async def test_a_category_id_of_the_old_sis_class_is_not_trusted_at_export(
    sis: RunningProvider, classroom: Classroom
) -> None:
    # Whatever left it there (a link made before this was fixed, a hand edit), an id the SIS
    # class does not have is not sent.
    _, second = _only_the_first_class_has_tests(sis)
    world = await _relink(await build_world(sis, classroom), second)
    with classroom.transaction() as session:
        tests = session.scalars(
            select(Category).where(Category.class_id == world.class_id, Category.title == "Tests")
        ).one()
        tests.sis_sourced_id = OLD_TESTS
    unit_test = world.add_coursework("Unit test", category="Tests")
    item = _item(await _export(world), unit_test)
    assert item.outcome is Outcome.SKIPPED
    assert "Its category 'Tests' is not one of the SIS class's categories" in item.reason
    assert (await sis_gradebook(world))[0] == []


@pytest.mark.anyio
async def test_a_chosen_grading_period_is_sent_only_if_the_sis_class_has_it(
    sis: RunningProvider, classroom: Classroom
) -> None:
    world = await build_world(sis, classroom)
    facts: SisClassFacts = world.facts
    assert len(facts.grading_periods) >= 2
    chosen = facts.grading_periods[1]
    with classroom.transaction() as session:
        theirs = GradingPeriod(title=chosen.title, sis_sourced_id=chosen.sourced_id)
        elsewhere = GradingPeriod(title="Quarter 1 of another class", sis_sourced_id="gp-elsewhere")
        session.add_all([theirs, elsewhere])
        session.flush()
        ids = {"theirs": theirs.id, "elsewhere": elsewhere.id}

    def work(title: str, period: str) -> int:
        with classroom.transaction() as session:
            return coursework.create_coursework(
                session,
                world.teacher,
                world.class_id,
                title=title,
                max_points=10,
                due_date=world.due_in_period(0),  # in period 0; the teacher chose another
                category_id=world.categories["Homework"],
                grading_period_id=ids[period],
                publish=True,
            ).id

    sent = work("Essay", "theirs")
    refused = work("Poster", "elsewhere")
    report = await _export(world)
    assert _item(report, sent).outcome is Outcome.EXPORTED
    item = _item(report, refused)
    assert item.outcome is Outcome.SKIPPED
    assert (
        "The grading period chosen for it (SIS id gp-elsewhere) is not one of the SIS class's "
        "grading periods" in item.reason
    )
    assert chosen.title in item.reason
    (line_item,), _ = await sis_gradebook(world)
    assert line_item.title == "Essay"
    assert line_item.grading_period is not None
    assert line_item.grading_period.sourced_id == chosen.sourced_id
