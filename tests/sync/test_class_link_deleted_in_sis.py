"""A linked SIS class that the SIS lists as `tobedeleted` (deleted there, as at the end of a
school year) is gone, as one it no longer knows: once its facts are read again, the export sends
nothing to it and says to link the class to its current SIS class."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from sislink.classroom import Classroom, open_classroom
from sislink.classroom.models import Category, utc_now
from sislink.classroom.services import connections
from sislink.oneroster.models import format_datetime
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.sync import class_link
from sislink.sync.export_report import ExportOutcome
from sislink.sync.mark_export import export_one_class
from sislink.sync.roster_import import import_roster
from sync.mark_export_world import build_world, sis_holds


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
    yield opened
    opened.close()


@pytest.mark.anyio
async def test_a_sis_class_listed_as_tobedeleted_takes_no_marks(
    sis: RunningProvider, classroom: Classroom
) -> None:
    world = await build_world(sis, classroom, students=1)
    work = world.add_coursework("Essay")
    world.mark(work, world.students[0], score=7)
    kept = sis.store.get("class", world.sis_class_id)
    assert kept is not None
    sis.store.put("class", {**kept, "status": "tobedeleted"})
    try:
        with classroom.transaction() as session:  # the facts are read again (as when stale)
            class_link.forget_sis_class_facts(session, world.class_id)
        async with world.client() as client:
            report = await export_one_class(classroom, client, world.teacher, world.class_id)
            with pytest.raises(class_link.SisClassGone):
                await class_link.refresh_class_facts_for_teacher(
                    classroom, client, world.teacher, world.class_id
                )
    finally:
        sis.store.put("class", kept)
    assert report.outcome is ExportOutcome.FAILED and report.writes == 0
    assert report.failed is not None
    assert f"does not know this class's SIS class ({world.sis_class_id})" in report.failed
    assert sis_holds(world) == (0, 0)


@pytest.mark.anyio
async def test_a_roster_import_that_finds_the_sis_class_deleted_does_not_vouch_for_its_facts(
    sis: RunningProvider, classroom: Classroom
) -> None:
    """A roster import keeps every linked class's facts fresh; one that finds the linked SIS
    class deleted (tobedeleted: the classroom's copy of it deactivated) leaves that class's
    facts to be read again, so the next export finds the class gone instead of exporting."""
    world = await build_world(sis, classroom, students=1)
    with classroom.session() as session:
        connection = connections.current_connection(session)
        assert connection is not None
        connection_id = connection.id
    kept = sis.store.get("class", world.sis_class_id)
    assert kept is not None
    try:
        async with world.client() as client:
            first = await import_roster(classroom, client, connection_id=connection_id)
            assert first.status == "applied"
            # Marked after the import (which offers the class its SIS categories anew).
            with classroom.session() as session:
                world.categories = {
                    c.title: c.id
                    for c in session.scalars(
                        select(Category).where(Category.class_id == world.class_id)
                    )
                }
            work = world.add_coursework("Essay", category="Tests")
            world.mark(work, world.students[0], score=7)
            sis.store.put(
                "class",
                {**kept, "status": "tobedeleted", "dateLastModified": format_datetime(utc_now())},
            )
            second = await import_roster(classroom, client, connection_id=connection_id)
            assert second.status == "applied"
            assert second.counts["classes"].deactivated == 1
            report = await export_one_class(classroom, client, world.teacher, world.class_id)
    finally:
        sis.store.put("class", kept)
    assert report.outcome is ExportOutcome.FAILED and report.writes == 0
    assert report.failed is not None
    assert f"does not know this class's SIS class ({world.sis_class_id})" in report.failed
    assert sis_holds(world) == (0, 0)
