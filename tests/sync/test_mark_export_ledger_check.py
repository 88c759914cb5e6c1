"""The ledger checked against the SIS (when a class's SIS facts are refreshed on demand): a
lineItem or result the SIS lists as `tobedeleted` (OneRoster's mark of a record deleted there,
still listed so that consumers learn of the deletion) is not one the SIS has: it is sent again
by the next export, as one the SIS lost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sislink.classroom import Classroom, open_classroom
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.sync import class_link
from sislink.sync.export_report import ExportOutcome, Outcome
from sislink.sync.mark_export import export_class_marks
from sync.mark_export_world import World, build_world, sis_gradebook


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


def _deleted_in_the_sis(world: World, kind: str, sourced_id: str) -> None:
    record = world.sis.store.get(kind, sourced_id)
    assert record is not None
    world.sis.store.put(kind, {**record, "status": "tobedeleted"})


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["lineItem", "result"])
async def test_what_the_sis_lists_as_tobedeleted_is_sent_again_once_the_facts_are_refreshed(
    sis: RunningProvider, classroom: Classroom, kind: str
) -> None:
    world = await build_world(sis, classroom, students=2)
    work = world.add_coursework("Essay")
    first, second = world.students
    world.mark(work, first, score=8)
    world.mark(work, second, score=9)
    async with world.client() as client:
        report = await export_class_marks(classroom, client, world.teacher, world.class_id)
        assert report.outcome is ExportOutcome.SUCCEEDED
        (item,), results = await sis_gradebook(world)
        gone = item.sourced_id if kind == "lineItem" else results[item.sourced_id][0].sourced_id
        _deleted_in_the_sis(world, kind, gone)
        await class_link.refresh_class_facts_for_teacher(
            classroom, client, world.teacher, world.class_id
        )
        again = await export_class_marks(classroom, client, world.teacher, world.class_id)
    assert again.outcome is ExportOutcome.SUCCEEDED
    sent = [i.sourced_id for i in again.items if i.outcome is Outcome.EXPORTED]
    if kind == "result":
        assert sent == [gone]
    else:  # its results are taken as deleted with it: sent again too, to the same ids
        assert sorted(sent) == sorted([gone, *(r.sourced_id for r in results[gone])])
    record = sis.store.get(kind, gone)
    assert record is not None and record["status"] == "active"
    (item,), now = await sis_gradebook(world)
    assert {r.student.sourced_id: r.score for r in now[item.sourced_id]} == {
        world.sis_students[first]: 8.0,
        world.sis_students[second]: 9.0,
    }


@pytest.mark.anyio
async def test_a_line_item_deleted_in_the_sis_is_sent_again_with_its_marks_by_the_next_export(
    sis: RunningProvider, classroom: Classroom
) -> None:
    """Someone deletes an exported lineItem (and its results) in the SIS; the ledger still
    says sent, so a new mark on it is refused (its lineItem is unknown). That refusal has the
    ledger checked against the SIS: the next export sends the lineItem and every mark again,
    instead of every export failing the same way until someone refreshes the class's facts."""
    world = await build_world(sis, classroom, students=2)
    work = world.add_coursework("Essay")
    first, second = world.students
    world.mark(work, first, score=8)
    async with world.client() as client:
        report = await export_class_marks(classroom, client, world.teacher, world.class_id)
        assert report.outcome is ExportOutcome.SUCCEEDED
        (item,), results = await sis_gradebook(world)
        for result in results[item.sourced_id]:
            sis.store.delete("result", result.sourced_id)
        sis.store.delete("lineItem", item.sourced_id)
        world.mark(work, second, score=9)
        refused = await export_class_marks(classroom, client, world.teacher, world.class_id)
        assert refused.outcome is ExportOutcome.PARTIAL
        again = await export_class_marks(classroom, client, world.teacher, world.class_id)
    assert again.outcome is ExportOutcome.SUCCEEDED
    (item,), now = await sis_gradebook(world)
    assert {r.student.sourced_id: r.score for r in now[item.sourced_id]} == {
        world.sis_students[first]: 8.0,
        world.sis_students[second]: 9.0,
    }
