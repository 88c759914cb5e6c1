"""While the SIS fails and a mark export retries, the export's progress says so, in words, and
that nothing is lost; once the SIS answers again the export finishes as usual."""

from __future__ import annotations

import asyncio

import pytest

from sislink.classroom import Classroom
from sislink.classroom.models import Job
from sislink.jobs.mark_export import run_class_export, sis_trouble
from sislink.oneroster.provider.server import running_provider
from sislink.sync.export_report import ExportOutcome
from sync.mark_export_world import build_world


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_only_no_answer_429_and_server_errors_are_trouble() -> None:
    assert sis_trouble(200, 0) is None
    assert sis_trouble(404, 0) is None
    assert "did not answer" in (sis_trouble(None, 0) or "")
    assert "slow down (429)" in (sis_trouble(429, 1) or "")
    said = sis_trouble(503, 0) or ""
    assert "(503)" in said and "attempt 2" in said and "Nothing is lost" in said


@pytest.mark.anyio
async def test_the_progress_says_the_sis_is_failing_while_the_export_retries(
    classroom: Classroom,
) -> None:
    # One request in three answered 503 (seeded): the client retries each until it passes.
    with running_provider(profile="generic-1.2", students=30, rate_503=0.35, latency_ms=40) as sis:
        world = await build_world(sis, classroom, students=6)
        for n in range(4):
            work = world.add_coursework(f"Work {n}")
            for student in world.students:
                world.mark(work, student, score=n + 1)
        export = asyncio.create_task(run_class_export(classroom, world.teacher, world.class_id))
        said: set[str] = set()
        while not export.done():
            with classroom.session() as session:
                for job in session.query(Job).filter(Job.kind == "mark_export"):
                    said.add(job.progress_message)
            await asyncio.sleep(0.02)
        run = await export
    troubled = [m for m in said if "The SIS answered with an error (503)" in m]
    assert troubled, said
    assert all("sislink waits and tries again" in m and "Nothing is lost" in m for m in troubled)
    assert run.reports[0].outcome is ExportOutcome.SUCCEEDED
