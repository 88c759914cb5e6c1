"""A grade pull with --export that is cancelled while it asks Google Classroom: it ends
cancelled, the export it was to run after the pull is not run, and the next pull with --export
sends what this one brought in. Against the local Classroom (its answers held back while the
cancel lands) and the built-in SIS on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from held_answers import HeldAnswers
from sislink.classroom import Actor, Classroom
from sislink.classroom.models import Coursework, Job, JobStatus
from sislink.googleclassroom.emulator import RunningClassroom, running_classroom
from sislink.googleclassroom.emulator import server as emulator_server
from sislink.googleclassroom.emulator.app import ClassroomConfig
from sislink.jobs.google_grades import GRADE_PULL, GradePullRun, run_grade_pull
from sislink.jobs.runner import request_cancel
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sync.google_grades_world import GradesWorld, build_grades_world
from sync.mark_export_world import sis_gradebook

POLL_S = 0.02
POLLS = 3000


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def sis() -> Iterator[RunningProvider]:
    with running_provider(profile="generic-1.2", students=30) as running:
        yield running


@pytest.fixture(scope="module")
def held() -> Iterator[list[HeldAnswers]]:
    made: list[HeldAnswers] = []
    real = emulator_server.create_app

    def held_app(classroom: Any) -> Any:
        made.append(HeldAnswers(real(classroom)))
        return made[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(emulator_server, "create_app", held_app)
        yield made


@pytest.fixture(scope="module")
def local(held: list[HeldAnswers]) -> Iterator[RunningClassroom]:
    config = ClassroomConfig(per_user_per_minute=100_000, per_client_per_minute=100_000)
    with running_classroom(students=30, config=config) as running:
        yield running


def _running_pull(classroom: Classroom) -> int | None:
    with classroom.session() as session:
        return session.scalar(
            select(Job.id).where(Job.kind == GRADE_PULL, Job.status == JobStatus.RUNNING)
        )


async def _cancelled_while_asking_classroom(
    sis: RunningProvider,
    classroom: Classroom,
    local: RunningClassroom,
    answers: HeldAnswers,
    *,
    export: bool,
) -> tuple[GradesWorld, int, GradePullRun]:
    """A class with one graded Essay in Classroom; a pull of it whose job is cancelled while
    Classroom's answers are held: the world, the job's id and how the pull ended."""
    g = await build_grades_world(sis, classroom, local)
    essay = g.add_work("Essay", points=20, category="Homework")
    g.grade(essay, g.emails[0], assigned=18, give_back=True)
    answers.hold()
    pulling = asyncio.create_task(
        run_grade_pull(classroom, g.world.teacher, class_ids=[g.class_id], export=export)
    )
    job_id = None
    for _ in range(POLLS):
        job_id = await asyncio.to_thread(_running_pull, classroom)
        if (job_id is not None and answers.waiting) or pulling.done():
            break
        await asyncio.sleep(POLL_S)
    try:
        assert job_id is not None and answers.waiting, "the pull never asked Classroom"
        request_cancel(classroom, job_id, Actor.system())
    finally:
        answers.release()
    return g, job_id, await pulling


@pytest.mark.anyio
async def test_a_pull_cancelled_while_it_asks_classroom_ends_cancelled_and_exports_nothing(
    sis: RunningProvider, classroom: Classroom, local: RunningClassroom, held: list[HeldAnswers]
) -> None:
    g, job_id, run = await _cancelled_while_asking_classroom(
        sis, classroom, local, held[-1], export=True
    )

    assert run.job.status == JobStatus.CANCELLED
    items, _ = await sis_gradebook(g.world)
    assert items == []  # the export after the pull was not run
    with classroom.session() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.status == JobStatus.CANCELLED
        assert job.report["cancelled"] is True

    again = await run_grade_pull(classroom, g.world.teacher, class_ids=[g.class_id], export=True)
    assert again.job.status == JobStatus.SUCCEEDED
    items, results = await sis_gradebook(g.world)
    assert [li.title for li in items] == ["Essay"]
    assert sorted(float(r.score) for rs in results.values() for r in rs) == [18.0]  # type: ignore[attr-defined]


@pytest.mark.anyio
async def test_a_pull_cancelled_while_it_asks_classroom_writes_nothing_after_the_cancel(
    sis: RunningProvider, classroom: Classroom, local: RunningClassroom, held: list[HeldAnswers]
) -> None:
    """Without --export too: the cancel stops the pull before it writes the class (it ended
    succeeded, its coursework and marks written after the cancel), and says the class was
    not pulled; the next pull takes it."""
    g, job_id, run = await _cancelled_while_asking_classroom(
        sis, classroom, local, held[-1], export=False
    )

    assert run.job.status == JobStatus.CANCELLED
    with classroom.session() as session:
        titles = session.scalars(
            select(Coursework.title).where(Coursework.class_id == g.class_id)
        ).all()
        assert "Essay" not in titles
        job = session.get(Job, job_id)
        assert job is not None and job.report["stopped"] is True
        (course,) = job.report["courses"]
        assert "the pull was stopped" in course["refused"]

    again = await run_grade_pull(classroom, g.world.teacher, class_ids=[g.class_id])
    assert again.job.status == JobStatus.SUCCEEDED
    with classroom.session() as session:
        titles = session.scalars(
            select(Coursework.title).where(Coursework.class_id == g.class_id)
        ).all()
        assert "Essay" in titles
