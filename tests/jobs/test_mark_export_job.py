"""A mark export job stops when the SIS is disconnected under it: no write is sent after that,
the ledger holds exactly what the SIS got, the report says the export was stopped, and the
export after reconnecting sends only the rest (nothing twice, nothing duplicated)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from sislink.classroom import Actor, Classroom
from sislink.classroom.models import ExportRecord, Job, JobStatus
from sislink.classroom.services import connections
from sislink.jobs.mark_export import run_class_export
from sislink.oneroster.provider.server import running_provider
from sislink.sync.export_report import ExportOutcome, Outcome, report_history
from sync.mark_export_world import build_world, connect_classroom, sis_holds

COURSEWORK = 25
STUDENTS = 10
# Slow enough that the export (COURSEWORK x (1 + STUDENTS) writes, 16 at a time) is still
# sending long after the disconnect is seen (the job reads its cancel flag once a second).
LATENCY_MS = 300


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _sent_per_ledger(classroom: Classroom) -> set[str]:
    """The sourcedIds the ledger says the SIS has (sent, with their content hash)."""
    with classroom.session() as session:
        return {
            r.sis_sourced_id
            for r in session.scalars(select(ExportRecord))
            if r.content_hash is not None
        }


@pytest.mark.anyio
async def test_a_disconnect_stops_a_running_export_and_the_next_export_sends_the_rest(
    classroom: Classroom,
) -> None:
    with running_provider(profile="generic-1.2", students=60, latency_ms=LATENCY_MS) as sis:
        world = await build_world(sis, classroom, students=STUDENTS)
        for n in range(COURSEWORK):
            work = world.add_coursework(f"Work {n}")
            for student in world.students:
                world.mark(work, student, score=n % 10)
        total = COURSEWORK * (1 + STUDENTS)

        export = asyncio.create_task(run_class_export(classroom, world.teacher, world.class_id))
        # Disconnect once the SIS has the first results.
        while sis.store.count("result") < 16 and not export.done():  # noqa: ASYNC110 (watching the SIS)
            await asyncio.sleep(0.05)
        with classroom.transaction() as session:
            connections.disconnect(session, Actor.system())
        stopped = await export

        assert stopped.job.status is JobStatus.CANCELLED
        assert stopped.stopped and stopped.as_json()["stopped"] is True
        (report,) = stopped.reports
        assert report.outcome is ExportOutcome.STOPPED
        assert report.stopped is not None and "stopped" in report.stopped
        not_sent = [i for i in report.items if i.outcome is Outcome.SKIPPED]
        assert not_sent and all("the export was stopped" in i.reason for i in not_sent)
        assert 0 < report.writes < total
        # Only what was sent before the stop reached the SIS, and the ledger knows exactly that.
        in_sis = {
            r["sourcedId"] for kind in ("lineItem", "result") for r in sis.store.iter_all(kind)
        }
        assert len(in_sis) == report.writes
        assert _sent_per_ledger(classroom) == in_sis
        with classroom.session() as session:
            assert report_history(session, world.class_id)[0].outcome == "stopped"

        connect_classroom(sis, classroom)  # the administrator connects again
        rest = await run_class_export(classroom, world.teacher, world.class_id)
        assert rest.job.status is JobStatus.SUCCEEDED
        (finished,) = rest.reports
        assert finished.outcome is ExportOutcome.SUCCEEDED
        # Each object sent once in all: what the first export sent is not sent again.
        assert report.writes + finished.writes == total
        # Every coursework once, each with every student's result once (read from the SIS's
        # own store: listing through the API at this latency would take long).
        titles = sorted(str(li["title"]) for li in sis.store.iter_all("lineItem"))
        assert titles == sorted(f"Work {n}" for n in range(COURSEWORK))
        per_item: dict[str, set[str]] = {}
        for result in sis.store.iter_all("result"):
            per_item.setdefault(result["lineItem"]["sourcedId"], set()).add(
                result["student"]["sourcedId"]
            )
        assert len(per_item) == COURSEWORK
        assert all(students == set(world.sis_students.values()) for students in per_item.values())
        assert sis_holds(world) == (COURSEWORK, COURSEWORK * STUDENTS)


@pytest.mark.anyio
async def test_a_class_export_job_that_cannot_export_fails_saying_why_and_keeps_the_report(
    classroom: Classroom,
) -> None:
    with running_provider(profile="generic-1.2", students=60) as sis:
        world = await build_world(sis, classroom, students=2)
        work = world.add_coursework("Essay")
        world.mark(work, world.students[0], score=3)
        assert sis.store.delete("class", world.sis_class_id)  # deleted in the SIS meanwhile
        run = await run_class_export(classroom, world.teacher, world.class_id)
    assert run.job.status is JobStatus.FAILED and run.job.error is not None
    assert f"does not know this class's SIS class ({world.sis_class_id})" in run.job.error
    (report,) = run.reports
    assert report.outcome is ExportOutcome.FAILED and report.failed == run.job.error
    with classroom.session() as session:
        (kept,) = report_history(session, world.class_id)
        assert kept.outcome == "failed" and kept.job_id == run.job.job_id


@pytest.mark.anyio
async def test_an_export_the_sis_partly_refused_needs_attention_saying_what_and_why(
    classroom: Classroom,
) -> None:
    with running_provider(profile="generic-1.2", students=60) as sis:
        world = await build_world(sis, classroom, students=2)
        homework = world.facts.category_titled("Homework")
        assert homework is not None
        good = world.add_coursework("Tests work", category="Tests")
        bad = world.add_coursework("Homework work", category="Homework")
        for student in world.students:
            world.mark(good, student, score=5)
            world.mark(bad, student, score=6)
        sis.store.delete("category", homework)  # the SIS refuses the Homework lineItem
        run = await run_class_export(classroom, world.teacher, world.class_id)
    (report,) = run.reports
    assert report.outcome is ExportOutcome.PARTIAL
    # Not `succeeded`: the job says what the SIS did not take, and why, in its own words.
    assert run.job.status is JobStatus.NEEDS_ATTENTION
    with classroom.session() as session:
        job = session.get(Job, run.job.job_id)
        assert job is not None and job.status == JobStatus.NEEDS_ATTENTION
        entry = (job.report or {})["attention"]
    failed = [i for i in report.items if i.outcome is Outcome.FAILED]
    assert failed and entry["count"] >= len(failed)
    assert any(
        "not accepted by the SIS: Homework work" in why and homework in why
        for why in entry["reasons"]
    ), entry
