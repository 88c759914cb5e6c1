"""Mark export finds each student among the SIS class's students: a SIS record listed as
`tobedeleted` (deleted there; a student given a new record, say, keeps the same email) takes
no mark, whichever way it is found: the mark goes to the student's active record."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sislink.classroom import Classroom, open_classroom
from sislink.classroom.models import Person
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.sync.export_report import ExportOutcome
from sislink.sync.mark_export import export_class_marks
from sync.mark_export_world import build_world, sis_gradebook


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
@pytest.mark.parametrize("known_by", ["sourced_id", "email"])
async def test_a_mark_goes_to_the_students_active_sis_record_not_a_deleted_one(
    sis: RunningProvider, classroom: Classroom, known_by: str
) -> None:
    world = await build_world(sis, classroom, students=1)
    (student,) = world.students
    old_id = world.sis_students[student]
    old = sis.store.get("user", old_id)
    assert old is not None
    new_id = f"{old_id}-renumbered"  # listed after the old record
    enrolment = next(
        e
        for e in sis.store.iter_all("enrollment")
        if e["user"]["sourcedId"] == old_id and e["class"]["sourcedId"] == world.sis_class_id
    )
    sis.store.put("user", {**old, "status": "tobedeleted"})
    sis.store.put("user", {**old, "sourcedId": new_id})
    sis.store.put(
        "enrollment",
        {
            **enrolment,
            "sourcedId": f"{enrolment['sourcedId']}-renumbered",
            "user": {**enrolment["user"], "sourcedId": new_id},
        },
    )
    try:
        if known_by == "sourced_id":  # as a roster import before the SIS renumbered them
            with classroom.transaction() as session:
                person = session.get(Person, student)
                assert person is not None
                person.sis_sourced_id = old_id
        work = world.add_coursework("Essay")
        world.mark(work, student, score=7)
        async with world.client() as client:
            report = await export_class_marks(classroom, client, world.teacher, world.class_id)
        assert report.outcome is ExportOutcome.SUCCEEDED
        (item,), results = await sis_gradebook(world)
        assert [r.student.sourced_id for r in results[item.sourced_id]] == [new_id]
    finally:
        sis.store.put("user", old)
        sis.store.delete("user", new_id)
        sis.store.delete("enrollment", f"{enrolment['sourcedId']}-renumbered")
