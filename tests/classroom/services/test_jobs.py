"""Jobs: one unfinished job per lock, progress and reports kept, finished jobs release the lock."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from sislink.classroom.db import Classroom
from sislink.classroom.errors import Conflict, InvalidInput
from sislink.classroom.models import JobStatus
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
        pytest.raises(Conflict, match=r"mark_export job \(number \d+\) is already queued"),
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
