"""The in-process job runner: jobs recorded with status, progress and report; one per lock; cancel."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from connected_for_jobs import save_authorised_connection
from sislink.classroom import Actor, Classroom, ClassroomError, Conflict, db, open_classroom
from sislink.classroom.models import Job, JobStatus
from sislink.classroom.services import jobs as job_service
from sislink.classroom.services.jobs import lock_key_for
from sislink.jobs.runner import (
    JobCancelled,
    JobContext,
    JobHeld,
    JobOutcome,
    execute,
    execute_job,
    queue,
    recover_interrupted,
    register_job_kind,
    request_cancel,
    run_job,
)
from sislink.jobs.schedule import tick
from sislink.sync.roster_holds import ROSTER_IMPORT, discard_hold


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


def lock_held_by(classroom: Classroom, lock: str) -> int | None:
    """The id of the unfinished job holding `lock` (job_lock), if any."""
    with classroom.session() as session:
        holder = job_service.find_unfinished(session, lock)
        return holder.id if holder is not None else None


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
    assert lock_held_by(classroom, "connection:1") is None
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
async def test_a_job_the_database_refused_says_so_without_its_sql_or_parameters(
    sqlite_classroom: Classroom, caplog: pytest.LogCaptureFixture
) -> None:
    """A database error's text carries the statement and its parameters (people's data): the
    report shown to administrators and the log keep neither."""

    async def work(context: JobContext) -> Mapping[str, Any]:
        with context.classroom.transaction() as session:
            session.execute(
                text("INSERT INTO job (id, kind) VALUES (:id, :kind)"),
                {"id": context.job_id, "kind": "Secret Pupil Name"},
            )
        return {}

    with caplog.at_level(logging.WARNING, logger="sislink.jobs"):
        outcome = await run_job(sqlite_classroom, kind="test", actor=Actor.system(), work=work)
    assert outcome.status is JobStatus.FAILED
    assert outcome.error is not None
    assert "database refused" in outcome.error and "IntegrityError" in outcome.error
    stored = job_row(sqlite_classroom, outcome.job_id).report["error"]
    for shown in (outcome.error, stored, caplog.text):
        assert "Secret Pupil Name" not in shown
    assert "INSERT" not in outcome.error and "INSERT" not in stored


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
    assert lock_held_by(sqlite_classroom, lock) == outcome.job_id
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


# Runs a job that never ends by itself, holding the lock argv[2]; prints its id once it runs.
RUN_A_JOB_UNTIL_KILLED = """
import asyncio, sys
from sislink.classroom import Actor, open_classroom
from sislink.jobs.runner import run_job
classroom = open_classroom(sys.argv[1], migrate_schema=False)
async def forever(context):
    print(context.job_id, flush=True)
    await asyncio.Event().wait()
    return {}
asyncio.run(run_job(classroom, kind=sys.argv[3], actor=Actor.system(), work=forever, lock_key=sys.argv[2]))
"""


def _killed_mid_run(classroom: Classroom, lock: str, kind: str = "test") -> tuple[int, int]:
    """A job another process was running when it was killed (kill -9): (job id, its pid)."""
    url = classroom.engine.url.render_as_string(hide_password=False)
    process = subprocess.Popen(
        [sys.executable, "-c", RUN_A_JOB_UNTIL_KILLED, url, lock, kind],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    try:
        job_id = int(process.stdout.readline())
        assert job_row(classroom, job_id).status == JobStatus.RUNNING
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    return job_id, process.pid


def test_a_job_whose_process_was_killed_is_failed_and_its_lock_free_for_the_next_run(
    classroom: Classroom,
) -> None:
    lock = lock_key_for(class_id=3)
    job_id, pid = _killed_mid_run(classroom, lock)
    assert recover_interrupted(classroom) == [job_id]
    job = job_row(classroom, job_id)
    assert job.status == JobStatus.FAILED and lock_held_by(classroom, lock) is None
    assert job.report["error"] == (
        f"sislink stopped while this job ran (the process {pid} on {socket.gethostname()} has "
        "ended); it is safe to run again: what was done is not done twice."
    )
    queue(classroom, kind="test", actor=Actor.system(), lock_key=lock)


@pytest.mark.anyio
async def test_the_next_run_takes_a_killed_jobs_lock_without_anyone_recovering_it(
    classroom: Classroom,
) -> None:
    lock = lock_key_for(connection_id=2)
    job_id, _ = _killed_mid_run(classroom, lock)

    async def work(context: JobContext) -> Mapping[str, Any]:
        return {"ran": True}

    outcome = await run_job(classroom, kind="test", actor=Actor.system(), work=work, lock_key=lock)
    assert outcome.succeeded
    assert job_row(classroom, job_id).status == JobStatus.FAILED


@pytest.mark.anyio
async def test_cancelling_a_job_whose_process_was_killed_ends_it_at_once(
    classroom: Classroom,
) -> None:
    job_id, _ = _killed_mid_run(classroom, lock_key_for(connection_id=5))
    assert request_cancel(classroom, job_id, Actor.system()) is JobStatus.CANCELLED
    job = job_row(classroom, job_id)
    assert lock_held_by(classroom, lock_key_for(connection_id=5)) is None
    assert job.report["cancelled"] is True
    assert "has ended" in job.report["error"]


def test_discarding_an_import_whose_process_was_killed_says_so_and_frees_its_lock(
    classroom: Classroom,
) -> None:
    lock = lock_key_for(connection_id=6)
    job_id, _ = _killed_mid_run(classroom, lock, kind=ROSTER_IMPORT)
    said = (
        rf"Roster import {job_id} is failed \(sislink stopped while this job ran \(the process "
        r"\d+ on .* has ended\); it is safe to run again: .*\), not on hold"
    )
    with pytest.raises(Conflict, match=said):
        discard_hold(classroom, job_id, Actor.system())
    queue(classroom, kind=ROSTER_IMPORT, actor=Actor.system(), lock_key=lock)


@pytest.mark.anyio
async def test_recovering_leaves_the_running_job_of_a_living_process_alone(
    classroom: Classroom,
) -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow(context: JobContext) -> Mapping[str, Any]:
        started.set()
        await release.wait()
        return {"done": True}

    running = asyncio.create_task(
        run_job(classroom, kind="test", actor=Actor.system(), work=slow, lock_key="connection:7")
    )
    await started.wait()
    assert recover_interrupted(classroom) == []
    release.set()
    outcome = await running
    assert outcome.status is JobStatus.SUCCEEDED and outcome.report == {"done": True}


@pytest.mark.anyio
async def test_a_running_job_renews_its_lease_while_it_works(
    sqlite_classroom: Classroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SISLINK_JOB_LEASE_SECONDS", "0.6")  # a heartbeat every 0.1 s
    seen: list[datetime] = []

    async def watch_own_lease(context: JobContext) -> Mapping[str, Any]:
        for _ in range(1000):
            expires = job_row(sqlite_classroom, context.job_id).lease_expires_at
            assert expires is not None
            if not seen or expires > seen[-1]:
                seen.append(expires)
            if len(seen) >= 4:
                break
            await asyncio.sleep(0.02)
        return {}

    outcome = await run_job(
        sqlite_classroom, kind="test", actor=Actor.system(), work=watch_own_lease
    )
    assert outcome.succeeded
    assert len(seen) >= 4, "the lease was not renewed while the job ran"


@pytest.mark.anyio
async def test_a_job_taken_over_elsewhere_stops_and_the_takeover_stands(
    sqlite_classroom: Classroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SISLINK_JOB_LEASE_SECONDS", "0.6")
    batches = 0

    async def batches_until_stopped(context: JobContext) -> Mapping[str, Any]:
        nonlocal batches
        with sqlite_classroom.transaction() as session:
            # What another machine does when this process's heartbeat is late past its lease:
            # fails the job, which releases the lock for its own run.
            job = session.get(Job, context.job_id)
            assert job is not None
            job_service.finish_job(
                session, job.id, JobStatus.FAILED, {"error": "taken over by the next run"}
            )
        for _ in range(1000):
            context.check_cancelled({"batches": batches})
            batches += 1
            await asyncio.sleep(0.01)
        return {"batches": batches}

    outcome = await run_job(
        sqlite_classroom, kind="test", actor=Actor.system(), work=batches_until_stopped
    )
    assert batches < 1000, "the job went on after it was taken over"
    assert outcome.status is JobStatus.FAILED
    assert outcome.error == "taken over by the next run"
    assert job_row(sqlite_classroom, outcome.job_id).report == {
        "error": "taken over by the next run"
    }


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


@pytest.mark.anyio
async def test_the_schedulers_tick_frees_a_killed_imports_lock_and_the_import_runs(
    classroom: Classroom,
) -> None:
    connection_id = save_authorised_connection(classroom)
    lock = lock_key_for(connection_id=connection_id)
    killed, _ = _killed_mid_run(classroom, lock, kind=ROSTER_IMPORT)

    async def an_import(opened: Classroom) -> JobOutcome:
        async def work(context: JobContext) -> Mapping[str, Any]:
            return {"imported": True}

        return await run_job(
            opened, kind=ROSTER_IMPORT, actor=Actor.system(), work=work, lock_key=lock
        )

    outcome = await tick(classroom, an_import)

    assert outcome is not None and outcome.succeeded
    assert job_row(classroom, killed).status == JobStatus.FAILED


@pytest.mark.anyio
async def test_a_job_that_cannot_be_started_is_failed_and_its_lock_freed(
    classroom: Classroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = lock_key_for(class_id=4)
    job_id = queue(classroom, kind="test", actor=Actor.system(), lock_key=lock)

    async def work(context: JobContext) -> Mapping[str, Any]:
        raise AssertionError("a job that did not start does not run")

    # Its start's transaction fails (here: the lease setting went wrong since it was queued).
    monkeypatch.setenv("SISLINK_JOB_LEASE_SECONDS", "soon")
    with pytest.raises(ClassroomError, match="SISLINK_JOB_LEASE_SECONDS is 'soon'"):
        await execute(classroom, job_id, work)
    monkeypatch.delenv("SISLINK_JOB_LEASE_SECONDS")
    job = job_row(classroom, job_id)
    # Not left queued, and locked, by this living process until it restarts.
    assert job.status == JobStatus.FAILED
    assert job.report["error"].startswith("It could not be started: SISLINK_JOB_LEASE_SECONDS")
    queue(classroom, kind="test", actor=Actor.system(), lock_key=lock)


@pytest.mark.anyio
async def test_a_heartbeat_that_waits_for_another_sqlite_writer_says_so_once_without_a_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Short waits and beats, so that many beats meet the other writer.
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 20)
    monkeypatch.setenv("SISLINK_JOB_LEASE_SECONDS", "0.6")
    classroom = open_classroom(f"sqlite:///{tmp_path / 'busy.db'}")
    heartbeat_logged = threading.Event()

    class HeartbeatLogged(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "heartbeat" in record.getMessage():
                heartbeat_logged.set()

    monkeypatch.setattr(logging.getLogger("sislink.jobs"), "handlers", [HeartbeatLogged()])

    async def work(context: JobContext) -> Mapping[str, Any]:
        # Another write transaction holds SQLite's only write lock (a roster import's writes).
        with classroom.transaction():
            assert await asyncio.to_thread(heartbeat_logged.wait, 60)
            await asyncio.sleep(1.0)  # about ten more beats meet it
        return {}

    try:
        with caplog.at_level(logging.INFO, logger="sislink.jobs"):
            outcome = await run_job(classroom, kind="test", actor=Actor.system(), work=work)
    finally:
        classroom.close()
    assert outcome.status is JobStatus.SUCCEEDED
    heartbeat_lines = [r for r in caplog.records if "heartbeat" in r.getMessage()]
    assert [r.getMessage() for r in heartbeat_lines] == [
        f"job {outcome.job_id}: its heartbeat waits for another write to the database (SQLite "
        "allows one at a time); it keeps trying"
    ]
    assert heartbeat_lines[0].exc_info is None


@pytest.mark.anyio
async def test_the_schedulers_tick_waits_for_a_long_sqlite_write_without_stopping_the_loop(
    sqlite_classroom: Classroom,
) -> None:
    classroom = sqlite_classroom
    killed, _ = _killed_mid_run(classroom, lock_key_for(class_id=5))
    locked, release = threading.Event(), threading.Event()

    def long_write() -> None:  # a roster import's write phase holds SQLite's only write lock
        with classroom.transaction():
            locked.set()
            release.wait(120)

    writer = threading.Thread(target=long_write)
    writer.start()
    try:
        assert await asyncio.to_thread(locked.wait, 60)

        async def no_import(_classroom: Classroom) -> JobOutcome:
            raise AssertionError("nothing is connected: no import is due")

        ticking = asyncio.create_task(tick(classroom, no_import))
        await asyncio.sleep(0.2)
        # The tick waits for the write lock (to fail the killed job) on a thread: the event loop,
        # which serves the console, still runs meanwhile.
        assert not ticking.done()
    finally:
        release.set()
        writer.join()
    assert await ticking is None
    assert job_row(classroom, killed).status == JobStatus.FAILED


def test_looking_for_killed_jobs_does_not_wait_for_a_long_sqlite_write_when_none_is_gone(
    sqlite_classroom: Classroom,
) -> None:
    classroom = sqlite_classroom
    living = queue(classroom, kind="test", actor=Actor.system(), lock_key="connection:1")
    locked, release = threading.Event(), threading.Event()

    def long_write() -> None:  # a roster import's write phase holds SQLite's only write lock
        with classroom.transaction():
            locked.set()
            release.wait(120)

    writer = threading.Thread(target=long_write)
    writer.start()
    try:
        assert locked.wait(60)
        # Read only: no write transaction (which would wait out the busy timeout, then fail).
        assert recover_interrupted(classroom) == []
    finally:
        release.set()
        writer.join()
    assert job_row(classroom, living).status == JobStatus.QUEUED


def test_a_job_whose_task_is_cancelled_stops_the_work_its_thread_runs(
    sqlite_classroom: Classroom,
) -> None:
    """`serve` stopping cancels the task of a job it runs (a Google roster sync or a grade
    pull, whose work runs on a thread): the job ends cancelled, its lock given back, and the
    thread must stop at its next check too, not go on writing for a job that ended."""
    started = threading.Event()
    batches: list[int] = []

    def batches_on_a_thread(context: JobContext) -> None:
        started.set()
        for batch in range(500):
            if context.cancelled():
                return
            batches.append(batch)
            threading.Event().wait(0.01)

    async def work(context: JobContext) -> Mapping[str, Any]:
        await asyncio.to_thread(batches_on_a_thread, context)
        return {}

    async def run_then_stop() -> None:
        running = asyncio.create_task(
            run_job(sqlite_classroom, kind="test", actor=Actor.system(), work=work, lock_key="t:1")
        )
        await asyncio.to_thread(started.wait)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running

    asyncio.run(run_then_stop())  # returns once the thread has ended too

    assert len(batches) < 500, "the thread went on after its job ended"
    assert lock_held_by(sqlite_classroom, "t:1") is None
    with sqlite_classroom.session() as session:
        (job,) = session.query(Job).all()
        assert job.status == JobStatus.CANCELLED
