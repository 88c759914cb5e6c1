"""A class a teacher made and linked, in a district whose roster import brings in the same SIS
class too: the import gives its copy of the SIS class the SIS's categories, the linked class's
coursework keeps the category its teacher chose, and the export files it under that SIS
category (not under none, nor Skyward's default 'Assignments')."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sislink.classroom import Classroom, open_classroom
from sislink.classroom.services import connections
from sislink.oneroster.provider.server import running_provider
from sislink.sync.export_report import ExportOutcome
from sislink.sync.mark_export import export_class_marks
from sislink.sync.roster_import import import_roster
from sync.mark_export_world import build_world, sis_gradebook


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def classroom(tmp_path: Path) -> Iterator[Classroom]:
    opened = open_classroom(f"sqlite:///{tmp_path / 'classroom.db'}")
    yield opened
    opened.close()


@pytest.mark.anyio
@pytest.mark.parametrize("profile", ["generic-1.2", "skyward"])
async def test_coursework_keeps_its_sis_category_after_a_roster_import(
    classroom: Classroom, profile: str
) -> None:
    with running_provider(profile=profile, students=10) as sis:
        world = await build_world(sis, classroom, students=1)
        work = world.add_coursework("Essay", category="Homework")
        world.mark(work, world.students[0], score=7)
        with classroom.session() as session:
            connection = connections.current_connection(session)
            assert connection is not None
            connection_id = connection.id
        async with world.client() as client:
            imported = await import_roster(classroom, client, connection_id=connection_id)
            assert imported.status == "applied"
            report = await export_class_marks(classroom, client, world.teacher, world.class_id)
        assert report.outcome is ExportOutcome.SUCCEEDED, [i.reason for i in report.items]
        (item,), _ = await sis_gradebook(world)
        filed_under = sis.store.get("category", item.category.sourced_id)
    assert filed_under is not None and filed_under["title"] == "Homework"
