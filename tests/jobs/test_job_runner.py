"""The in-process job runner: jobs recorded with status, progress and report; one per lock; cancel."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from sislink.classroom import Actor, Classroom, Conflict, open_classroom
from sislink.classroom.models import Job, JobStatus
from sislink.classroom.services.jobs import lock_key_for
from sislink.jobs.runner import (
    JobCancelled,
    JobContext,
    JobHeld,
    execute_job,
    queue,
    recover_interrupted,
    register_job_kind,
    request_cancel,
    run_job,
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sqlite_classroom(tmp_path: Path) -> Iterator[Classroom]:
    opened = open_classroom(f"sqlite:///{tmp_path / 'jobs.db'}")
    try:
        yield opened
    finally:
        opened.close()


def job_row(classroom: Classroom, job_id: int) -> Job:
    with classroom.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


@pytest.mark.anyio
async def test_a_job_that_succeeds_is_recorded_with_its_report_and_progress(
    classroom: Classroom,
) -> None:
    async def work(context: JobContext) -> Mapping[str, Any]:
        context.progress(3, 10, "three of ten", force=True)
        assert job_row(classroom, context.job_id).progress_done == 3
        return {"written": 10}

    outcome = await run_job(
        classroom, kind="test", actor=Actor.system(), work=work, lock_key="connection:1"
    )
    assert outcome.status is JobStatus.SUCCEEDED
    job = job_row(classroom, outcome.job_id)
    assert job.status == JobStatus.SUCCEEDED
    assert job.report == {"written": 10}
    assert job.progress_message == "three of ten"
    assert job.active_lock is None
    assert job.started_at is not None and job.finished_at is not None


@pytest.mark.anyio
async def test_a_failing_job_is_recorded_as_failed_with_a_plain_message(
    sqlite_classroom: Classroom,
) -> None:
    async def work(context: JobContext) -> Mapping[str, Any]:
        raise RuntimeError("the SIS said no")

    outcome = await run_job(sqlite_classroom, kind="test", actor=Actor.system(), work=work)
    assert outcome.status is JobStatus.FAILED
    assert outcome.error == "RuntimeError: the SIS said no"
    assert job_row(sqlite_classroom, outcome.job_id).report == {"error": outcome.error}


@pytest.mark.anyio
async def test_only_one_unfinished_job_may_hold_a_lock(sqlite_classroom: Classroom) -> None:
    lock = lock_key_for(connection_id=1)
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow(context: JobContext) -> Mapping[str, Any]:
        started.set()
        await release.wait()
        return {}

    first = asyncio.create_task(
        run_job(sqlite_classroom, kind="test", actor=Actor.system(), work=slow, lock_key=lock)
    )
    await started.wait()
    with pytest.raises(Conflict, match="already running"):
        await run_job(sqlite_classroom, kind="test", actor=Actor.system(), work=slow, lock_key=lock)
    release.set()
    assert (await first).succeeded
    # Once the first ended, the lock is free again.
    again = await run_job(
        sqlite_classroom, kind="test", actor=Actor.system(), work=slow, lock_key=lock
    )
    assert again.succeeded


@pytest.mark.anyio
async def test_a_running_job_stops_at_its_next_batch_when_cancelled(
    sqlite_classroom: Classroom,
) -> None:
    batches_done = []

    async def batches(context: JobContext) -> Mapping[str, Any]:
        for batch in range(1000):
            context.check_cancelled({"batches": len(batches_done)})
            batches_done.append(batch)
            if batch == 2:
                request_cancel(sqlite_classroom, context.job_id, Actor.system())
            await asyncio.sleep(0.01)
        return {"batches": len(batches_done)}

    outcome = await run_job(sqlite_classroom, kind="test", actor=Actor.system(), work=batches)
    assert outcome.status is JobStatus.CANCELLED
    assert len(batches_done) < 1000
    job = job_row(sqlite_classroom, outcome.job_id)
    assert job.status == JobStatus.CANCELLED
    assert job.report["cancelled"] is True
    assert job.active_lock is None


@pytest.mark.anyio
async def test_a_held_job_keeps_its_lock_until_cancelled(sqlite_classroom: Classroom) -> None:
    lock = lock_key_for(connection_id=4)

    async def risky(context: JobContext) -> Mapping[str, Any]:
        raise JobHeld("would remove 30% of enrolments", {"plan": {"deactivate": 120}})

    outcome = await run_job(
        sqlite_classroom, kind="test", actor=Actor.system(), work=risky, lock_key=lock
    )
    assert outcome.status is JobStatus.ON_HOLD
    job = job_row(sqlite_classroom, outcome.job_id)
    assert job.status == JobStatus.ON_HOLD
    assert job.report == {"plan": {"deactivate": 120}}
    assert job.active_lock == lock
    with pytest.raises(Conflict):
        queue(sqlite_classroom, kind="test", actor=Actor.system(), lock_key=lock)
    assert request_cancel(sqlite_classroom, outcome.job_id, Actor.system()) is JobStatus.CANCELLED
    queue(sqlite_classroom, kind="test", actor=Actor.system(), lock_key=lock)


@pytest.mark.anyio
async def test_a_queued_job_runs_by_id_with_its_registered_kind_and_params(
    sqlite_classroom: Classroom,
) -> None:
    async def echo(context: JobContext) -> Mapping[str, Any]:
        return {"seen": context.params}

    register_job_kind("test_echo", echo)
    job_id = queue(
        sqlite_classroom, kind="test_echo", actor=Actor.system(), params={"connection_id": 9}
    )
    outcome = await execute_job(sqlite_classroom, job_id)
    assert outcome.report == {"seen": {"connection_id": 9}}


def test_jobs_left_running_by_a_stopped_process_are_failed_and_unlocked(
    sqlite_classroom: Classroom,
) -> None:
    lock = lock_key_for(class_id=3)
    job_id = queue(sqlite_classroom, kind="test", actor=Actor.system(), lock_key=lock)
    with sqlite_classroom.transaction() as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.status = JobStatus.RUNNING  # as if the process died mid-run
    assert recover_interrupted(sqlite_classroom) == [job_id]
    job = job_row(sqlite_classroom, job_id)
    assert job.status == JobStatus.FAILED
    assert "safe to repeat" in job.report["error"]
    queue(sqlite_classroom, kind="test", actor=Actor.system(), lock_key=lock)


def test_cancelling_a_finished_job_says_it_already_ended(sqlite_classroom: Classroom) -> None:
    job_id = queue(sqlite_classroom, kind="test", actor=Actor.system())
    request_cancel(sqlite_classroom, job_id, Actor.system())
    with pytest.raises(Conflict, match="already ended"):
        request_cancel(sqlite_classroom, job_id, Actor.system())


def test_job_cancelled_carries_the_report_so_far() -> None:
    assert JobCancelled({"done": 3}).report == {"done": 3}


@pytest.mark.anyio
async def test_a_job_failing_in_words_logs_the_words_and_a_bug_logs_its_traceback(
    sqlite_classroom: Classroom, caplog: pytest.LogCaptureFixture
) -> None:
    async def refused(context: JobContext) -> Mapping[str, Any]:
        raise Conflict("The class is not linked to a SIS class; link it first.")

    async def broken(context: JobContext) -> Mapping[str, Any]:
        raise KeyError("unexpected")

    with caplog.at_level("WARNING", logger="sislink.jobs"):
        await run_job(sqlite_classroom, kind="test", actor=Actor.system(), work=refused)
        await run_job(sqlite_classroom, kind="test", actor=Actor.system(), work=broken)
    worded, bug = [r for r in caplog.records if r.name == "sislink.jobs"]
    assert "link it first" in worded.getMessage() and not worded.exc_info
    assert bug.exc_info is not None and bug.exc_info[0] is KeyError


@pytest.mark.anyio
async def test_a_job_whose_tasks_fail_says_the_failing_tasks_own_sentence(
    sqlite_classroom: Classroom,
) -> None:
    async def side_by_side(context: JobContext) -> Mapping[str, Any]:
        async def one_class() -> None:
            raise Conflict("The class is not linked to a SIS class; link it first.")

        async with asyncio.TaskGroup() as group:
            group.create_task(one_class())
        return {}

    outcome = await run_job(sqlite_classroom, kind="test", actor=Actor.system(), work=side_by_side)
    assert outcome.status is JobStatus.FAILED
    assert outcome.error == "The class is not linked to a SIS class; link it first."
