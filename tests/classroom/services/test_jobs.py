"""Jobs: one unfinished job per lock, progress and reports kept, finished jobs release the lock."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sislink.classroom import Actor
from sislink.classroom.db import Classroom
from sislink.classroom.errors import Conflict, InvalidInput
from sislink.classroom.models import Job, JobStatus
from sislink.classroom.services import jobs

if TYPE_CHECKING:
    from ..conftest import School


def test_a_second_job_for_the_same_class_waits_for_the_first(
    classroom: Classroom, school: School
) -> None:
    lock = jobs.lock_key_for(class_id=school.class_id)
    with classroom.transaction() as session:
        first = jobs.queue_job(
            session, school.ada, "mark_export", class_id=school.class_id, lock_key=lock
        )
    with (
        pytest.raises(
            Conflict,
            match=r"mark_export job \(number \d+: mark export of one class, asked by Ada "
            r"Teacher\) is already queued for the same thing \(the process \d+ on .*, still "
            r"running\); wait for it to finish, or cancel it",
        ),
        classroom.transaction() as session,
    ):
        jobs.queue_job(session, school.ada, "mark_export", class_id=school.class_id, lock_key=lock)
    with classroom.transaction() as session:
        jobs.start_job(session, first.id, total=40)
        jobs.update_progress(session, first.id, 20, message="20 of 40 marks sent")
        done = jobs.finish_job(session, first.id, JobStatus.SUCCEEDED, {"sent": 40, "skipped": []})
        assert done.finished_at is not None and done.report == {"sent": 40, "skipped": []}
    with classroom.transaction() as session:
        second = jobs.queue_job(
            session, school.ada, "mark_export", class_id=school.class_id, lock_key=lock
        )
        assert second.id != first.id
        assert [j.id for j in jobs.recent_jobs(session, class_id=school.class_id)] == [
            second.id,
            first.id,
        ]


def test_a_job_on_hold_keeps_its_lock_and_reports_why(classroom: Classroom, school: School) -> None:
    with classroom.transaction() as session:
        held = jobs.queue_job(session, school.admin, "roster_import", lock_key="connection:1")
        jobs.start_job(session, held.id)
        jobs.hold_job(session, held.id, "Would remove 40% of students", {"removed": 400})
    with pytest.raises(Conflict, match="already on hold"), classroom.transaction() as session:
        jobs.queue_job(session, school.admin, "roster_import", lock_key="connection:1")


def test_jobs_end_only_once_and_only_as_an_ending(classroom: Classroom, school: School) -> None:
    with classroom.transaction() as session:
        job = jobs.queue_job(session, school.admin, "roster_import")
        with pytest.raises(InvalidInput, match="ends as succeeded, failed or cancelled"):
            jobs.finish_job(session, job.id, JobStatus.RUNNING, {})
        jobs.finish_job(session, job.id, JobStatus.FAILED, {"error": "SIS answered 401"})
        with pytest.raises(Conflict, match="already ended as failed"):
            jobs.finish_job(session, job.id, JobStatus.SUCCEEDED, {})
        with pytest.raises(Conflict, match="cannot start"):
            jobs.start_job(session, job.id)


# Another process starts a job holding `lock` and ends without finishing it (a crash, as far as
# the lock can tell); it prints the job's id and its own identity.
LEAVE_A_RUNNING_JOB = """
import sys
from sislink.classroom import Actor, open_classroom
from sislink.classroom.services import jobs
classroom = open_classroom(sys.argv[1], migrate_schema=False)
with classroom.transaction() as session:
    job = jobs.queue_job(session, Actor.system(), "roster_import", lock_key=sys.argv[2])
    jobs.start_job(session, job.id)
print(job.id, jobs.this_process().token())
"""


def _left_by_another_process(classroom: Classroom, lock: str) -> tuple[int, jobs.ProcessIdentity]:
    url = classroom.engine.url.render_as_string(hide_password=False)
    done = subprocess.run(
        [sys.executable, "-c", LEAVE_A_RUNNING_JOB, url, lock],
        capture_output=True,
        text=True,
        check=True,
    )
    job_id, token = done.stdout.split()
    holder = jobs.ProcessIdentity.parse(token)
    assert holder is not None
    return int(job_id), holder


def _job(classroom: Classroom, job_id: int) -> Job:
    with classroom.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def test_a_job_whose_process_ended_is_failed_and_its_lock_taken_at_once(
    classroom: Classroom, school: School
) -> None:
    left, holder = _left_by_another_process(classroom, "connection:1")
    with classroom.transaction() as session:
        # Its lease still runs for half a minute: the process's end is what counts.
        assert _job(classroom, left).lease_expires_at > jobs.database_now(session)  # type: ignore[operator]
        taken = jobs.queue_job(session, school.admin, "roster_import", lock_key="connection:1")
        assert jobs.find_unfinished(session, "connection:1") is taken
    ended = _job(classroom, left)
    assert ended.status == JobStatus.FAILED
    assert ended.report["error"] == (
        f"sislink stopped while this job ran (the process {holder.pid} on {holder.host} has "
        "ended); it is safe to run again: what was done is not done twice."
    )


def test_a_job_held_on_another_machine_keeps_its_lock_until_its_lease_runs_out(
    classroom: Classroom, school: School
) -> None:
    left, holder = _left_by_another_process(classroom, "connection:1")
    elsewhere = jobs.ProcessIdentity("other-host", holder.pid, "77", "another-boot/pid:[1]")
    with classroom.transaction() as session:
        job = jobs.get_job(session, left)
        now = jobs.database_now(session)
        # Its lease runs for an hour more, in the database's time: whatever this machine's
        # clock says, and although no pid here is that process's, it lives.
        job.lease_holder = elsewhere.token()
        job.heartbeat_at = now
        job.lease_expires_at = now + timedelta(hours=1)
    with (
        pytest.raises(
            Conflict,
            match=rf"number {left}: roster import\) is already running .*"
            r"\(the process \d+ on other-host, still running\)",
        ),
        classroom.transaction() as session,
    ):
        jobs.queue_job(session, school.admin, "roster_import", lock_key="connection:1")
    with classroom.transaction() as session:
        assert jobs.end_jobs_whose_holder_is_gone(session) == []
        job = jobs.get_job(session, left)
        job.lease_expires_at = jobs.database_now(session) - timedelta(seconds=1)
        heard = job.heartbeat_at
        assert heard is not None
    with classroom.transaction() as session:
        jobs.queue_job(session, school.admin, "roster_import", lock_key="connection:1")
    assert _job(classroom, left).report["error"] == (
        f"sislink stopped while this job ran (the process {holder.pid} on other-host no longer "
        f"answers: no heartbeat since {heard:%Y-%m-%d %H:%M:%S} UTC); it is safe to run again: "
        "what was done is not done twice."
    )


def test_a_living_process_keeps_its_lock_however_late_its_heartbeat(
    classroom: Classroom, school: School
) -> None:
    with classroom.transaction() as session:
        mine = jobs.queue_job(session, school.admin, "roster_import", lock_key="connection:1")
        jobs.start_job(session, mine.id)
        # Its heartbeat is late (a long write, a paused process): it still runs, here.
        mine.lease_expires_at = jobs.database_now(session) - timedelta(hours=1)
    with classroom.transaction() as session:
        assert jobs.end_jobs_whose_holder_is_gone(session) == []
    with pytest.raises(Conflict, match="still running"), classroom.transaction() as session:
        jobs.queue_job(session, school.admin, "roster_import", lock_key="connection:1")
    assert _job(classroom, mine.id).status == JobStatus.RUNNING


def test_a_process_given_a_dead_holders_pid_does_not_keep_its_lock(
    classroom: Classroom, school: School
) -> None:
    here = jobs.this_process()
    assert here.machine, "this test needs /proc (Linux)"
    with classroom.transaction() as session:
        job = jobs.queue_job(session, school.admin, "roster_import", lock_key="connection:1")
        # The pid is this process's now, but the holder started at another moment: it ended,
        # and the system gave its pid to this process since.
        job.lease_holder = jobs.ProcessIdentity(here.host, here.pid, "1", here.machine).token()
    with classroom.transaction() as session:
        assert jobs.end_jobs_whose_holder_is_gone(session) == [job.id]
    assert "has ended" in _job(classroom, job.id).report["error"]


def test_a_held_job_keeps_its_lock_after_its_process_ended_until_someone_decides(
    classroom: Classroom, school: School
) -> None:
    left, _ = _left_by_another_process(classroom, "connection:1")
    with classroom.transaction() as session:
        jobs.hold_job(session, left, "Would remove 40% of students", {"removed": 400})
    with classroom.transaction() as session:
        assert jobs.end_jobs_whose_holder_is_gone(session) == []
    with pytest.raises(Conflict, match="already on hold"), classroom.transaction() as session:
        jobs.queue_job(session, school.admin, "roster_import", lock_key="connection:1")
    with classroom.transaction() as session:
        jobs.finish_job(session, left, JobStatus.CANCELLED, {"discarded": True})
        jobs.queue_job(session, school.admin, "roster_import", lock_key="connection:1")


def test_a_lease_is_renewed_only_by_its_holder_and_only_while_the_job_runs(
    classroom: Classroom, school: School
) -> None:
    left, holder = _left_by_another_process(classroom, "connection:1")
    with classroom.transaction() as session:
        before = jobs.get_job(session, left).lease_expires_at
        assert not jobs.renew_lease(session, left, jobs.this_process())
        assert jobs.renew_lease(session, left, holder)
    after = _job(classroom, left).lease_expires_at
    assert before is not None and after is not None and after > before
    with classroom.transaction() as session:
        jobs.finish_job(session, left, JobStatus.SUCCEEDED, {})
        assert not jobs.renew_lease(session, left, holder)


def test_a_job_working_on_a_class_holds_its_lock_until_it_gives_it_back(
    classroom: Classroom, school: School
) -> None:
    class_lock = jobs.lock_key_for(class_id=school.class_id)
    with classroom.transaction() as session:
        every = jobs.queue_job(session, school.admin, "mark_export_all", lock_key="mark_export:c1")
        jobs.start_job(session, every.id)
        jobs.take_lock(session, every.id, class_lock)
    with (
        pytest.raises(
            Conflict,
            match=rf"number {every.id}: mark export of every class, asked by Alex Admin\) is "
            rf"already running; it is working on class {school.class_id} now",
        ),
        classroom.transaction() as session,
    ):
        jobs.queue_job(session, school.ada, "mark_export", lock_key=class_lock)
    with classroom.transaction() as session:
        jobs.release_lock(session, every.id, class_lock)
        one = jobs.queue_job(session, school.ada, "mark_export", lock_key=class_lock)
    with (
        pytest.raises(Conflict, match=rf"number {one.id}: mark export of one class"),
        classroom.transaction() as session,
    ):
        jobs.take_lock(session, every.id, class_lock)
    with classroom.transaction() as session:
        jobs.finish_job(session, one.id, JobStatus.SUCCEEDED, {})
        jobs.take_lock(session, every.id, class_lock)
        jobs.finish_job(session, every.id, JobStatus.SUCCEEDED, {})  # its locks go with it
        assert jobs.find_unfinished(session, class_lock) is None
        assert jobs.find_unfinished(session, "mark_export:c1") is None


@pytest.mark.parametrize("given", ["soon", "0", "-3", "nan", "99999"])
def test_a_lease_setting_that_is_not_a_sensible_number_of_seconds_is_refused_in_words(
    given: str,
) -> None:
    with pytest.raises(InvalidInput, match=rf"SISLINK_JOB_LEASE_SECONDS is '{given}': give the "):
        jobs.lease_seconds({"SISLINK_JOB_LEASE_SECONDS": given})
    assert jobs.lease_seconds({"SISLINK_JOB_LEASE_SECONDS": "2.5"}) == 2.5
    assert jobs.heartbeat_seconds({}) == jobs.DEFAULT_LEASE_S / jobs.BEATS_PER_LEASE


def test_queued_jobs_are_held_by_the_process_that_queued_them(classroom: Classroom) -> None:
    with classroom.transaction() as session:
        job = jobs.queue_job(session, Actor.system(), "roster_import")
        assert job.lease_holder == jobs.this_process().token()


def test_a_living_holder_that_proc_hides_keeps_its_lock(
    classroom: Classroom, school: School, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    here = jobs.this_process()
    assert here.machine, "this test needs /proc (Linux)"
    living = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        holder = jobs.ProcessIdentity(here.host, living.pid, "12345", here.machine)
        with classroom.transaction() as session:
            job = jobs.queue_job(session, school.admin, "roster_import", lock_key="connection:1")
            job.lease_holder = holder.token()
        # /proc mounted with hidepid=2 shows no stat file for another user's process: as if
        # every /proc/<pid>/stat were missing.
        monkeypatch.setattr(jobs, "PROC_STAT", str(tmp_path / "{pid}" / "stat"))
        with classroom.transaction() as session:
            assert jobs.end_jobs_whose_holder_is_gone(session) == []
        with pytest.raises(Conflict, match="still running"), classroom.transaction() as session:
            jobs.queue_job(session, school.admin, "roster_import", lock_key="connection:1")
    finally:
        living.kill()
        living.wait()
    # Ended for the kernel too: now it is gone.
    with classroom.transaction() as session:
        assert jobs.end_jobs_whose_holder_is_gone(session) == [job.id]


def test_a_job_whose_lease_was_renewed_after_it_was_read_is_not_taken_over(
    classroom: Classroom, school: School
) -> None:
    left, holder = _left_by_another_process(classroom, "connection:1")
    elsewhere = jobs.ProcessIdentity("other-host", holder.pid, "77", "another-boot/pid:[1]")
    with classroom.transaction() as session:
        job = jobs.get_job(session, left)
        job.lease_holder = elsewhere.token()
        job.lease_expires_at = jobs.database_now(session) - timedelta(seconds=1)
    # Someone reads it: its lease ran out...
    with classroom.session() as session:
        [seen] = jobs.jobs_whose_holder_is_gone(session)
    # ...and its heartbeat renews the lease before they fail it.
    with classroom.transaction() as session:
        assert jobs.renew_lease(session, left, elsewhere)
    with classroom.transaction() as session:
        assert jobs.end_if_holder_gone(session, seen) is None
        assert jobs.end_jobs_whose_holder_is_gone(session, [seen]) == []
    assert _job(classroom, left).status == JobStatus.RUNNING


def test_a_lease_renewed_while_someone_takes_the_lock_keeps_the_job_and_refuses_them(
    classroom: Classroom, school: School
) -> None:
    if classroom.engine.dialect.name != "postgresql":
        pytest.skip("on SQLite a write transaction holds the only write lock: no heartbeat between")
    left, holder = _left_by_another_process(classroom, "connection:1")
    elsewhere = jobs.ProcessIdentity("other-host", holder.pid, "77", "another-boot/pid:[1]")
    with classroom.transaction() as session:
        job = jobs.get_job(session, left)
        job.lease_holder = elsewhere.token()
        job.lease_expires_at = jobs.database_now(session) - timedelta(seconds=1)
    with classroom.transaction() as session:
        seen = jobs.get_job(session, left)  # read (and kept): its lease ran out
        # Its heartbeat commits in between (another connection)...
        with classroom.transaction() as beat:
            assert jobs.renew_lease(beat, left, elsewhere)
        # ...so the lock is refused, naming the job, instead of taken from a living holder.
        with pytest.raises(Conflict, match=rf"number {left}: roster import\) is already running"):
            jobs.queue_job(session, school.admin, "roster_import", lock_key="connection:1")
        # (`seen` is kept alive to here: the session's copy of the job is the one read before.)
        assert seen.id == left
    assert _job(classroom, left).status == JobStatus.RUNNING
