"""Who may link a class to which SIS class: the primary teacher only, one of their own active
SIS classes only, one classroom class per SIS class; and the SIS class's grading periods and
categories, as linked and as kept current."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from sislink.classroom import Actor, Classroom, open_classroom
from sislink.classroom.errors import Conflict, PermissionDenied
from sislink.classroom.models import (
    Category,
    Class,
    ClassExportSettings,
    EnrolmentRole,
    Role,
    utc_now,
)
from sislink.classroom.services import classes, connections, people
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.sync import class_link
from sync.mark_export_world import World, build_world


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sis() -> Iterator[RunningProvider]:
    # One SIS per test: some tests change what the SIS says of a class.
    with running_provider(profile="generic-1.2", students=60) as running:
        yield running


@pytest.fixture
def classroom(tmp_path: Path) -> Iterator[Classroom]:
    opened = open_classroom(f"sqlite:///{tmp_path / 'classroom.db'}")
    yield opened
    opened.close()


def _linked_to(world: World) -> str | None:
    with world.classroom.session() as session:
        link = connections.class_link(session, world.class_id)
        return link.sis_class_sourced_id if link is not None else None


def _teacher(world: World, name: str, email: str) -> Actor:
    with world.classroom.transaction() as session:
        person = people.create_person(
            session, Actor.system(), name=name, email=email, roles=[Role.TEACHER]
        )
        return Actor.of(person)


@pytest.mark.anyio
async def test_a_co_teacher_cannot_link_or_unlink_but_the_primary_teacher_can(
    sis: RunningProvider, classroom: Classroom
) -> None:
    world = await build_world(sis, classroom)
    co_teacher = _teacher(world, "Co Teacher", "co.teacher@school.example")
    with classroom.transaction() as session:
        assert co_teacher.person_id is not None
        classes.enrol(
            session, world.teacher, world.class_id, co_teacher.person_id, EnrolmentRole.TEACHER
        )
    with classroom.session() as session:
        klass = session.get(Class, world.class_id)
        assert klass is not None
        title = klass.title
    with pytest.raises(
        PermissionDenied, match=re.escape(f"Only the primary teacher of {title!r} can unlink it")
    ):
        class_link.unlink_class(classroom, co_teacher, world.class_id)
    assert _linked_to(world) == world.sis_class_id
    async with world.client() as client:
        with pytest.raises(
            PermissionDenied,
            match=re.escape(f"Only the primary teacher of {title!r} can link it to a SIS class"),
        ):
            await class_link.link_class(
                classroom, client, co_teacher, world.class_id, world.sis_class_id
            )
        assert class_link.unlink_class(classroom, world.teacher, world.class_id) is True
        assert _linked_to(world) is None
        await class_link.link_class(
            classroom, client, world.teacher, world.class_id, world.sis_class_id
        )
    assert _linked_to(world) == world.sis_class_id


@pytest.mark.anyio
async def test_a_teacher_cannot_link_a_sis_class_that_is_not_one_of_their_own(
    sis: RunningProvider, classroom: Classroom
) -> None:
    world = await build_world(sis, classroom)
    async with world.client() as client:
        own = {
            c.sourced_id
            for c in await class_link.sis_classes_for_teacher(client, sis.teacher_email)
        }
        someone_elses = next(
            c["sourcedId"]
            for c in sis.store.iter_all("class")
            if c["status"] == "active" and c["sourcedId"] not in own
        )
        with pytest.raises(
            PermissionDenied,
            match=f"The SIS class {someone_elses} is not one of your active SIS classes",
        ):
            await class_link.link_class(
                classroom, client, world.teacher, world.class_id, someone_elses
            )
        # An administrator links any class of the SIS.
        await class_link.link_class(
            classroom, client, Actor.system(), world.class_id, someone_elses
        )
    assert _linked_to(world) == someone_elses


@pytest.mark.anyio
async def test_a_second_class_cannot_link_a_sis_class_another_class_is_linked_to(
    sis: RunningProvider, classroom: Classroom
) -> None:
    world = await build_world(sis, classroom)
    with classroom.transaction() as session:
        second = classes.create_class(
            session,
            Actor.system(),
            title="Second class",
            primary_teacher_id=world.teacher.person_id,
        ).id
    async with world.client() as client:
        for actor in (world.teacher, Actor.system()):
            with pytest.raises(
                Conflict,
                match=(
                    f"The SIS class {world.sis_class_id} is already linked to the class "
                    f"'Class [^']*'; unlink it there first"
                ),
            ):
                await class_link.link_class(classroom, client, actor, second, world.sis_class_id)
        with classroom.session() as session:
            assert connections.class_link(session, second) is None
        class_link.unlink_class(classroom, world.teacher, world.class_id)
        await class_link.link_class(classroom, client, world.teacher, second, world.sis_class_id)
    with classroom.session() as session:
        link = connections.class_link(session, second)
        assert link is not None and link.sis_class_sourced_id == world.sis_class_id


def _terms_of_teachers_first_class(sis: RunningProvider) -> list[str]:
    teacher = next(u for u in sis.store.iter_all("user") if u.get("email") == sis.teacher_email)
    taught = {
        e["class"]["sourcedId"]
        for e in sis.store.iter_all("enrollment")
        if e["user"]["sourcedId"] == teacher["sourcedId"] and e["status"] == "active"
    }
    first = min(
        (c for c in sis.store.iter_all("class") if c["sourcedId"] in taught),
        key=lambda c: (c["title"], c["sourcedId"]),
    )
    return [t["sourcedId"] for t in first["terms"]]


def _periods_of(sis: RunningProvider, terms: list[str]) -> list[dict[str, Any]]:
    return [
        r
        for r in sis.store.iter_all("academicSession")
        if r["type"] == "gradingPeriod" and r.get("parent", {}).get("sourcedId") in terms
    ]


@pytest.mark.anyio
async def test_grading_periods_the_sis_is_deleting_are_not_kept(
    sis: RunningProvider, classroom: Classroom
) -> None:
    terms = _terms_of_teachers_first_class(sis)
    going, *staying = _periods_of(sis, terms)
    assert staying
    sis.store.put("academicSession", {**going, "status": "tobedeleted"})
    world = await build_world(sis, classroom)
    assert world.sis_class_id and set(world.facts.term_sourced_ids) == set(terms)
    async with world.client() as client:
        listed = {
            p.sourced_id: p.status
            for term in terms
            for p in await client.grading_periods_for_term(term)
        }
    assert listed[going["sourcedId"]] == "tobedeleted"  # the SIS still lists it
    kept = {p.sourced_id for p in world.facts.grading_periods}
    assert kept == {p["sourcedId"] for p in staying}


@pytest.mark.anyio
async def test_what_the_sis_says_of_a_class_is_read_again_once_it_is_stale(
    sis: RunningProvider, classroom: Classroom
) -> None:
    world = await build_world(sis, classroom)
    before = world.facts
    assert "Projects" not in {title for _, title in before.categories}
    # After the link, the SIS gains a category for the class and starts deleting a period.
    sis.store.put(
        "category",
        {
            "sourcedId": "cat-projects",
            "status": "active",
            "dateLastModified": "2026-08-01T12:00:00.000Z",
            "title": "Projects",
            "class": {"sourcedId": world.sis_class_id, "type": "class"},
        },
    )
    going = _periods_of(sis, list(before.term_sourced_ids))[0]
    sis.store.put("academicSession", {**going, "status": "tobedeleted"})
    async with world.client() as client:
        fresh = await class_link.refresh_sis_class_facts(classroom, client, world.class_id)
        assert fresh.categories == before.categories  # not stale yet: what was kept
        assert fresh.grading_periods == before.grading_periods
        with classroom.transaction() as session:
            settings = session.scalars(
                select(ClassExportSettings).where(ClassExportSettings.class_id == world.class_id)
            ).one()
            settings.sis_refreshed_at = (
                utc_now() - class_link.FACTS_STALE_AFTER - timedelta(minutes=1)
            )
        fresh = await class_link.refresh_sis_class_facts(classroom, client, world.class_id)
    assert ("cat-projects", "Projects") in fresh.categories
    assert going["sourcedId"] not in {p.sourced_id for p in fresh.grading_periods}
    assert len(fresh.grading_periods) == len(before.grading_periods) - 1
    with classroom.session() as session:
        offered = session.scalars(
            select(Category).where(
                Category.class_id == world.class_id, Category.title == "Projects"
            )
        ).one()
        assert offered.sis_sourced_id == "cat-projects"
        settings = session.scalars(
            select(ClassExportSettings).where(ClassExportSettings.class_id == world.class_id)
        ).one()
        assert settings.sis_refreshed_at is not None
        assert utc_now() - settings.sis_refreshed_at < class_link.FACTS_STALE_AFTER
