"""A roster import gets each class's categories as OneRoster 1.2 gives them
(`classes/{id}/categories`, the categories themselves name no class) and refreshes the linked
classes' SIS facts (categories, grading periods): nobody waits 12 hours after a re-import."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from sislink.classroom import Actor, Classroom
from sislink.classroom.errors import PermissionDenied
from sislink.classroom.models import (
    Category,
    Class,
    ClassExportSettings,
    ClassLink,
    Enrolment,
    EnrolmentRole,
    Person,
    Role,
    utc_now,
)
from sislink.classroom.services import people
from sislink.oneroster.provider.server import RunningProvider
from sislink.sync import class_link
from sync.sis_shapes import Shape, shaped_provider
from sync.test_roster_import import bumped, client_for, connect, run_import


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def sis_categories_by_class(running: RunningProvider) -> dict[str, set[tuple[str, str]]]:
    """What the SIS holds: each class's active categories (sourcedId, title)."""
    found: dict[str, set[tuple[str, str]]] = {}
    for record in running.store.iter_all("category"):
        if record.get("status") == "tobedeleted":
            continue
        class_id = record["metadata"]["classSourcedId"]
        found.setdefault(class_id, set()).add((record["sourcedId"], record["title"]))
    return found


def classroom_categories_by_class(classroom: Classroom) -> dict[str, set[tuple[str, str]]]:
    with classroom.session() as session:
        rows = session.execute(
            select(Class.sis_sourced_id, Category.sis_sourced_id, Category.title)
            .join(Class, Class.id == Category.class_id)
            .where(Category.active.is_(True), Category.sis_sourced_id.is_not(None))
        )
        found: dict[str, set[tuple[str, str]]] = {}
        for class_id, sourced_id, title in rows:
            found.setdefault(class_id, set()).add((sourced_id, title))
        return found


def kept_facts(classroom: Classroom, sis_class_id: str) -> class_link.SisClassFacts | None:
    with classroom.session() as session:
        class_id = session.scalar(select(Class.id).where(Class.sis_sourced_id == sis_class_id))
        assert class_id is not None
        return class_link.kept_sis_class_facts(session, class_id)


def add_category_and_period(running: RunningProvider, sis_class_id: str) -> tuple[str, str]:
    """The SIS administrator adds a category to one class and a grading period to its term."""
    store = running.store
    store.put(
        "category",
        bumped(
            next(store.iter_all("category")),
            sourcedId="cat-added-in-the-sis",
            title="Lab reports",
            metadata={"classSourcedId": sis_class_id},
        ),
    )
    klass = store.get("class", sis_class_id)
    assert klass is not None
    term = klass["terms"][0]["sourcedId"]
    period = next(
        s
        for s in store.iter_all("academicSession")
        if s["type"] == "gradingPeriod" and s["parent"]["sourcedId"] == term
    )
    store.put("academicSession", bumped(period, sourcedId="gp-added", title="Added period"))
    return "Lab reports", "Added period"


@pytest.mark.anyio
async def test_a_plain_1_2_sis_gives_each_class_its_categories(classroom: Classroom) -> None:
    with shaped_provider(Shape(plain_categories=True), students=60) as running:
        connection_id = connect(classroom, running)
        report = await run_import(classroom, connection_id)
        expected = sis_categories_by_class(running)
    assert "categories_without_class" not in report.warnings
    assert report.counts["categories"].created == sum(len(c) for c in expected.values())
    assert classroom_categories_by_class(classroom) == expected


@pytest.mark.parametrize("plain", [True, False], ids=["plain-1.2", "with-metadata"])
@pytest.mark.anyio
async def test_a_re_import_refreshes_the_linked_classes_sis_facts_at_once(
    classroom: Classroom, plain: bool
) -> None:
    with shaped_provider(Shape(plain_categories=plain), students=60) as running:
        connection_id = connect(classroom, running)
        await run_import(classroom, connection_id)
        sis_class = next(running.store.iter_all("class"))["sourcedId"]
        first = kept_facts(classroom, sis_class)
        assert first is not None  # the import that linked the class kept its facts
        assert len(first.categories) == 3 and first.grading_periods
        category, period = add_category_and_period(running, sis_class)
        report = await run_import(classroom, connection_id)  # a delta
    assert report.mode == "delta"
    now = kept_facts(classroom, sis_class)
    assert now is not None
    assert category in [title for _, title in now.categories]
    assert period in [p.title for p in now.grading_periods]


@pytest.mark.anyio
async def test_facts_read_long_ago_count_as_fresh_after_an_import_confirms_them(
    classroom: Classroom,
) -> None:
    with shaped_provider(Shape(), students=40) as running:
        connection_id = connect(classroom, running)
        await run_import(classroom, connection_id)
        sis_class = next(running.store.iter_all("class"))["sourcedId"]
        with classroom.transaction() as session:
            for row in session.scalars(select(ClassExportSettings)):
                row.sis_refreshed_at = utc_now() - timedelta(hours=13)
        assert kept_facts(classroom, sis_class) is not None  # the import's start confirms them
        await run_import(classroom, connection_id)
    assert kept_facts(classroom, sis_class) is not None


def teacher_of(classroom: Classroom, sis_class: str) -> tuple[int, Actor]:
    with classroom.session() as session:
        klass = session.scalars(select(Class).where(Class.sis_sourced_id == sis_class)).one()
        person_id = session.scalar(
            select(Enrolment.person_id).where(
                Enrolment.class_id == klass.id, Enrolment.role == EnrolmentRole.TEACHER
            )
        )
        person = session.get(Person, person_id)
        assert person is not None
        return klass.id, Actor.of(person)


@pytest.mark.anyio
async def test_a_teacher_refreshes_a_class_s_sis_facts_and_a_stranger_cannot(
    classroom: Classroom,
) -> None:
    with shaped_provider(Shape(plain_categories=True), students=40) as running:
        connection_id = connect(classroom, running)
        await run_import(classroom, connection_id)
        sis_class = next(running.store.iter_all("class"))["sourcedId"]
        class_id, teacher = teacher_of(classroom, sis_class)
        category, period = add_category_and_period(running, sis_class)
        async with client_for(classroom, connection_id) as client:
            facts = await class_link.refresh_class_facts_for_teacher(
                classroom, client, teacher, class_id
            )
            with classroom.transaction() as session:
                stranger = people.create_person(
                    session, Actor.system(), name="Other", email="o@x.org", roles=[Role.TEACHER]
                )
                stranger_actor = Actor.of(stranger)
            with pytest.raises(PermissionDenied):
                await class_link.refresh_class_facts_for_teacher(
                    classroom, client, stranger_actor, class_id
                )
    assert category in [t for _, t in facts.categories]
    assert period in [p.title for p in facts.grading_periods]
    kept = kept_facts(classroom, sis_class)
    assert kept is not None and category in [t for _, t in kept.categories]
    with classroom.session() as session:
        titles = set(session.scalars(select(Category.title).where(Category.class_id == class_id)))
    assert category in titles  # choosable for coursework at once


@pytest.mark.anyio
async def test_stale_facts_are_read_again_before_a_teacher_adds_coursework(
    classroom: Classroom,
) -> None:
    with shaped_provider(Shape(plain_categories=True), students=40) as running:
        connection_id = connect(classroom, running)
        await run_import(classroom, connection_id)
        sis_class = next(running.store.iter_all("class"))["sourcedId"]
        class_id, _ = teacher_of(classroom, sis_class)
        category, _ = add_category_and_period(running, sis_class)
        _age_everything(classroom, hours=13)
        unread = await class_link.fresh_facts_before_coursework(classroom, class_id)
    assert unread is None
    with classroom.session() as session:
        titles = set(session.scalars(select(Category.title).where(Category.class_id == class_id)))
    assert category in titles


def _age_everything(classroom: Classroom, *, hours: int) -> None:
    """As if the facts and the last import were `hours` old."""
    from sislink.classroom.models import RosterSyncState

    with classroom.transaction() as session:
        long_ago: Any = utc_now() - timedelta(hours=hours)
        for row in session.scalars(select(ClassExportSettings)):
            row.sis_refreshed_at = long_ago
        for state in session.scalars(select(RosterSyncState)):
            state.watermark = long_ago
        assert session.scalars(select(ClassLink)).first() is not None


@pytest.mark.parametrize("second", ["delta", "full"])
@pytest.mark.anyio
async def test_a_1_2_sis_without_class_categories_offers_the_district_s_and_keeps_them(
    classroom: Classroom, second: str
) -> None:
    """A plain 1.2 SIS without `classes/{id}/categories`: its categories name no class. Each
    linked class is offered the district's categories (as linking does), and a later import
    that did not ask about a class never empties them; the SIS is asked once, not per class."""
    shape = Shape(plain_categories=True, no_class_categories=True)
    with shaped_provider(shape, students=60) as running:
        connection_id = connect(classroom, running)
        first = await run_import(classroom, connection_id)
        calls_in_first = shape.class_category_calls
        district = {
            r["title"]
            for r in running.store.iter_all("category")
            if r.get("status") != "tobedeleted"
        }
        sis_class = next(running.store.iter_all("class"))["sourcedId"]
        await run_import(classroom, connection_id, full=second == "full")
    assert "class_categories_not_served" in first.warnings
    assert "categories_without_class" not in first.warnings
    assert calls_in_first <= 8  # stopped at the first 404, not one call per class
    facts = kept_facts(classroom, sis_class)
    assert facts is not None
    assert {title for _, title in facts.categories} == district
    assert facts.not_served_call(class_link.CATEGORIES) is not None
    with classroom.session() as session:
        class_id = session.scalar(select(Class.id).where(Class.sis_sourced_id == sis_class))
        offered = set(
            session.scalars(
                select(Category.title).where(
                    Category.class_id == class_id, Category.active.is_(True)
                )
            )
        )
    assert district <= offered  # choosable for coursework


@pytest.mark.anyio
async def test_a_cancel_stops_the_per_class_categories_calls(classroom: Classroom) -> None:
    from sislink.sync.roster_import import RosterImportCancelled

    shape = Shape(plain_categories=True)
    with shaped_provider(shape, students=60) as running:
        connection_id = connect(classroom, running)
        classes = sum(1 for _ in running.store.iter_all("class"))
        with pytest.raises(RosterImportCancelled):
            await run_import(
                classroom, connection_id, should_stop=lambda: shape.class_category_calls > 0
            )
    assert shape.class_category_calls < classes  # not one call per class after the cancel
    with classroom.session() as session:
        assert session.scalar(select(Class.id)) is None  # nothing applied
