"""One class is exported by one job at a time: the export of every class (`--all`) holds each
class's lock while it exports that class, so an export of the class alone (`--class`) is
refused meanwhile, naming the job; and a class whose own export is running is left to it by
`--all`, whose report says which job has it. Against the built-in SIS, slow enough for the two
to meet; SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sislink.classroom import Classroom, Conflict
from sislink.classroom.models import Job, JobStatus
from sislink.classroom.services import jobs as job_service
from sislink.jobs.mark_export import run_all_exports, run_class_export
from sislink.oneroster.provider.server import running_provider
from sislink.sync.export_report import ExportOutcome
from sync.mark_export_world import World, build_worlds, sis_holds

COURSEWORK = 12
STUDENTS = 8
LATENCY_MS = 200
POLL_S = 0.02
POLLS = 2000


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _with_marks(worlds: list[World]) -> None:
    for world in worlds:
        for n in range(COURSEWORK):
            work = world.add_coursework(f"Work {n}")
            for student in world.students:
                world.mark(work, student, score=n % 10)


async def _until_held(classroom: Classroom, lock: str, task: asyncio.Task[Any]) -> Job:
    """Wait until some job holds `lock` (the export is under way); that job."""
    for _ in range(POLLS):
        assert not task.done(), "the export ended before it held the lock"
        with classroom.session() as session:
            holder = job_service.find_unfinished(session, lock)
            if holder is not None and holder.status == JobStatus.RUNNING:
                return holder
        await asyncio.sleep(POLL_S)
    raise AssertionError(f"no running job ever held {lock}")


def _exact(worlds: list[World]) -> None:
    expected = len(worlds) * COURSEWORK
    assert sis_holds(worlds[0]) == (expected, expected * STUDENTS)
    pairs = [
        (r["lineItem"]["sourcedId"], r["student"]["sourcedId"])
        for r in worlds[0].sis.store.iter_all("result")
    ]
    assert len(set(pairs)) == len(pairs)


@pytest.mark.anyio
async def test_a_class_export_is_refused_while_the_export_of_every_class_exports_that_class(
    classroom: Classroom,
) -> None:
    with running_provider(profile="generic-1.2", students=60, latency_ms=LATENCY_MS) as sis:
        worlds = await build_worlds(sis, classroom, students=STUDENTS, class_indexes=[0, 1])
        _with_marks(worlds)
        first, _ = worlds
        every = asyncio.create_task(run_all_exports(classroom, first.teacher))
        lock = job_service.lock_key_for(class_id=first.class_id)
        holder = await _until_held(classroom, lock, every)

        with pytest.raises(Conflict) as refused:
            await run_class_export(classroom, first.teacher, first.class_id)

        assert (
            f"(number {holder.id}: mark export of every class, asked by The Teacher) is already "
            f"running; it is working on class {first.class_id} now" in refused.value.message
        )
        done = await every
        assert done.job.status is JobStatus.SUCCEEDED
        assert [r.outcome for r in done.reports] == [ExportOutcome.SUCCEEDED] * 2
        _exact(worlds)
        with classroom.session() as session:
            # Each class's lock went back when its export ended.
            assert job_service.find_unfinished(session, lock) is None
        again = await run_class_export(classroom, first.teacher, first.class_id)
        assert again.job.status is JobStatus.SUCCEEDED and again.writes == 0


@pytest.mark.anyio
async def test_the_export_of_every_class_leaves_a_class_to_its_own_running_export_and_says_so(
    classroom: Classroom,
) -> None:
    with running_provider(profile="generic-1.2", students=60, latency_ms=LATENCY_MS) as sis:
        worlds = await build_worlds(sis, classroom, students=STUDENTS, class_indexes=[0, 1])
        _with_marks(worlds)
        first, second = worlds
        alone = asyncio.create_task(run_class_export(classroom, first.teacher, first.class_id))
        lock = job_service.lock_key_for(class_id=first.class_id)
        holder = await _until_held(classroom, lock, alone)

        every = await run_all_exports(classroom, first.teacher)

        by_class = {r.class_id: r for r in every.reports}
        left = by_class[first.class_id]
        assert left.outcome is ExportOutcome.REFUSED and left.writes == 0
        assert left.refused is not None
        assert left.refused.startswith(
            "Not exported by this job: another job is exporting this class. A mark_export job "
            f"(number {holder.id}: mark export of one class, asked by The Teacher) is already "
            "running"
        )
        assert by_class[second.class_id].outcome is ExportOutcome.SUCCEEDED
        # A class left out is not a success: the job needs attention, naming the class.
        assert every.job.status is JobStatus.NEEDS_ATTENTION
        with classroom.session() as session:
            kept = session.get(Job, every.job.job_id)
            assert kept is not None
            (why,) = (kept.report or {})["attention"]["reasons"]
        assert why.startswith(f"{left.class_title!r} was not exported: Not exported by this job")
        own = await alone
        assert own.job.status is JobStatus.SUCCEEDED
        assert own.writes == COURSEWORK * (1 + STUDENTS)
        _exact(worlds)
