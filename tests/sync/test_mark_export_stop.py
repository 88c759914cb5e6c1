"""An export that is asked to stop sends no write after that, and the ledger keeps exactly
what the SIS got; an export of every class stops before the classes not yet started. A lineItem
whose results could not be deleted is not deleted under them. (Asked through `should_stop`, the
job's cancel flag; the job itself is tested in tests/jobs/test_mark_export_job.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from sislink.classroom import Classroom, open_classroom
from sislink.classroom.models import ExportRecord
from sislink.classroom.services import coursework
from sislink.oneroster.consumer import OAuth2Settings, OneRosterClient
from sislink.oneroster.provider.auth import ALL_SCOPES
from sislink.oneroster.provider.server import running_provider
from sislink.oneroster.versions import GRADEBOOK_DELETE
from sislink.sync.export_report import ExportOutcome, Outcome
from sislink.sync.mark_export import export_all_classes, export_class_marks
from sync.mark_export_world import World, build_world, build_worlds, sis_gradebook, sis_holds


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def classroom(tmp_path: Path) -> Iterator[Classroom]:
    opened = open_classroom(f"sqlite:///{tmp_path / 'classroom.db'}")
    yield opened
    opened.close()


class StopAfter:
    """Says "stop" once it has been asked `n` times (as a job's cancel flag flips mid-run)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.asked = 0

    def __call__(self) -> bool:
        self.asked += 1
        return self.asked > self.n


def _in_sis(world: World) -> set[str]:
    return {
        str(r["sourcedId"])
        for kind in ("lineItem", "result")
        for r in world.sis.store.iter_all(kind)
    }


def _ledger_sent(world: World) -> set[str]:
    with world.classroom.session() as session:
        return {
            r.sis_sourced_id
            for r in session.scalars(select(ExportRecord))
            if r.content_hash is not None
        }


@pytest.mark.anyio
async def test_a_stopped_export_sends_nothing_more_and_the_ledger_keeps_what_was_sent(
    classroom: Classroom,
) -> None:
    with running_provider(profile="generic-1.2", students=60) as sis:
        world = await build_world(sis, classroom, students=4)
        for n in range(5):
            work = world.add_coursework(f"Work {n}")
            for student in world.students:
                world.mark(work, student, score=n)
        total = 5 * (1 + len(world.students))
        stop = StopAfter(8)
        async with world.client() as client:
            report = await export_class_marks(
                classroom, client, world.teacher, world.class_id, should_stop=stop
            )
        assert report.outcome is ExportOutcome.STOPPED and report.stopped is not None
        assert report.writes == 8  # asked before each write: eight went, then none
        sent = {i.sourced_id for i in report.items if i.outcome is Outcome.EXPORTED}
        assert len(sent) == 8
        assert _in_sis(world) == sent == _ledger_sent(world)
        not_sent = [i for i in report.items if i.outcome is Outcome.SKIPPED]
        assert len(not_sent) == total - 8
        assert all(i.reason.startswith("Not sent: the export was stopped") for i in not_sent)

        async with world.client() as client:
            rest = await export_class_marks(classroom, client, world.teacher, world.class_id)
        assert rest.outcome is ExportOutcome.SUCCEEDED
        assert report.writes + rest.writes == total
        items, results = await sis_gradebook(world)
        assert len(items) == 5 and all(len(r) == len(world.students) for r in results.values())


@pytest.mark.anyio
async def test_an_export_of_every_class_stopped_before_a_class_does_not_start_it(
    classroom: Classroom,
) -> None:
    with running_provider(profile="generic-1.2", students=60) as sis:
        worlds = await build_worlds(sis, classroom, students=2, class_indexes=[0, 1, 2])
        for world in worlds:
            work = world.add_coursework("Work")
            world.mark(work, world.students[0], score=1)
        async with worlds[0].client() as client:
            reports = await export_all_classes(
                classroom, client, worlds[0].teacher, should_stop=lambda: True
            )
        assert [r.class_id for r in reports] == [w.class_id for w in worlds]
        assert all(r.outcome is ExportOutcome.STOPPED and r.writes == 0 for r in reports)
        assert all((r.stopped or "").startswith("Not tried") for r in reports)
        assert all(r.report_id is not None for r in reports)  # kept in each class's history
        assert sis_holds(worlds[0]) == (0, 0)


@pytest.mark.anyio
async def test_a_line_item_whose_results_could_not_be_deleted_waits_for_them(
    classroom: Classroom,
) -> None:
    with running_provider(profile="generic-1.2", students=60) as sis:
        world = await build_world(sis, classroom, students=3)
        work = world.add_coursework("Quiz")
        for student in world.students:
            world.mark(work, student, score=2)
        async with world.client() as client:
            await export_class_marks(classroom, client, world.teacher, world.class_id)
        with classroom.transaction() as session:
            coursework.delete_coursework(session, world.teacher, work)
        # The same SIS, with credentials that may read and write but not delete: the result
        # DELETEs are refused (403).
        with running_provider(
            profile="generic-1.2",
            store=sis.store,
            client_id=sis.client_id,
            client_secret=sis.client_secret,
            scopes=[s for s in ALL_SCOPES if s != GRADEBOOK_DELETE],
        ) as no_delete:
            settings = world.settings()
            assert isinstance(settings.auth, OAuth2Settings)
            refusing = replace(
                settings,
                base_url=no_delete.base_url,
                auth=replace(settings.auth, token_url=no_delete.token_url),
            )
            async with OneRosterClient(refusing) as client:
                failed = await export_class_marks(classroom, client, world.teacher, world.class_id)
        results = [i for i in failed.items if i.kind == "result"]
        assert {i.outcome for i in results} == {Outcome.FAILED}
        assert {i.student_id for i in results} == set(world.students)
        (line_item,) = [i for i in failed.items if i.kind == "lineItem"]
        assert line_item.outcome is Outcome.SKIPPED
        assert line_item.reason.startswith("Not deleted yet")
        assert failed.writes == len(world.students)  # the lineItem's DELETE was not sent
        assert sis_holds(world) == (1, len(world.students))

        async with world.client() as client:
            again = await export_class_marks(classroom, client, world.teacher, world.class_id)
        assert again.outcome is ExportOutcome.SUCCEEDED
        assert again.writes == len(world.students) + 1
        assert sis_holds(world) == (0, 0)
        assert (await sis_gradebook(world))[0] == []


@pytest.mark.anyio
async def test_a_stopped_export_of_every_class_leaves_at_most_one_lot_of_writes_under_way(
    classroom: Classroom,
) -> None:
    # Four classes export at once; the SIS is slow, so writes queue for the client's slots.
    # Once the stop is seen, only the writes already past the stop check may still land: one
    # lot of max_concurrency for all the classes, not one lot per class.
    concurrency, seen_at = 4, 10
    with running_provider(profile="generic-1.2", students=60, latency_ms=50) as sis:
        worlds = await build_worlds(sis, classroom, students=5, class_indexes=[0, 1, 2, 3])
        for world in worlds:
            for n in range(4):
                work = world.add_coursework(f"Work {n}")
                for student in world.students:
                    world.mark(work, student, score=n)
        landed_when_stopped: list[int] = []

        def stop_once_the_sis_has_some() -> bool:
            landed = sis.store.count("lineItem") + sis.store.count("result")
            if landed >= seen_at and not landed_when_stopped:
                landed_when_stopped.append(landed)
            return bool(landed_when_stopped)

        async with worlds[0].client(max_concurrency=concurrency) as client:
            reports = await export_all_classes(
                classroom, client, worlds[0].teacher, should_stop=stop_once_the_sis_has_some
            )
        landed = sis.store.count("lineItem") + sis.store.count("result")
    assert all(r.outcome is ExportOutcome.STOPPED for r in reports)
    (when,) = landed_when_stopped
    assert landed - when <= concurrency
    assert sum(r.writes for r in reports) == landed
