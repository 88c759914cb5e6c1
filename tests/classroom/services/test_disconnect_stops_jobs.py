"""Disconnecting stops the connection's imports and exports at once, those under way included."""

from __future__ import annotations

import subprocess
import sys

from connected_for_jobs import save_authorised_connection
from sislink.classroom import Actor, Classroom
from sislink.classroom.models import AuditEvent, JobStatus
from sislink.classroom.services import connections, jobs


def test_disconnect_cancels_queued_jobs_and_asks_running_ones_to_stop(
    classroom: Classroom,
) -> None:
    connection_id = save_authorised_connection(classroom)
    admin = Actor.system()
    with classroom.transaction() as session:
        queued = jobs.queue_job(
            session, admin, "roster_import", connection_id=connection_id, lock_key="a"
        )
        running = jobs.queue_job(
            session, admin, "mark_export", connection_id=connection_id, lock_key="b"
        )
        session.flush()
        jobs.start_job(session, running.id)
        other = jobs.queue_job(session, admin, "something_else", lock_key="c")
        session.flush()
        ids = (queued.id, running.id, other.id)
    with classroom.transaction() as session:
        connections.disconnect(session, admin)
    with classroom.session() as session:
        queued_job, running_job, other_job = (jobs.get_job(session, i) for i in ids)
        assert (
            queued_job.status == JobStatus.CANCELLED and jobs.find_unfinished(session, "a") is None
        )
        assert running_job.status == JobStatus.RUNNING and running_job.cancel_requested
        assert other_job.status == JobStatus.QUEUED and not other_job.cancel_requested
        event = session.query(AuditEvent).filter_by(action="sis.disconnected").one()
        assert event.details == {"jobs_stopped": [ids[0], ids[1]]}


# Another process starts a job and ends without finishing it (killed, as far as the lock can tell).
LEAVE_A_RUNNING_JOB = """
import sys
from sislink.classroom import Actor, open_classroom
from sislink.classroom.services import jobs
classroom = open_classroom(sys.argv[1], migrate_schema=False)
with classroom.transaction() as session:
    job = jobs.queue_job(
        session, Actor.system(), "roster_import", connection_id=int(sys.argv[2]), lock_key="a"
    )
    jobs.start_job(session, job.id)
print(job.id)
"""


def test_disconnect_ends_a_running_job_whose_process_was_killed(classroom: Classroom) -> None:
    connection_id = save_authorised_connection(classroom)
    url = classroom.engine.url.render_as_string(hide_password=False)
    left = subprocess.run(
        [sys.executable, "-c", LEAVE_A_RUNNING_JOB, url, str(connection_id)],
        capture_output=True,
        text=True,
        check=True,
    )
    job_id = int(left.stdout)
    with classroom.transaction() as session:
        assert jobs.cancel_connection_jobs(session, connection_id) == [job_id]
    with classroom.session() as session:
        job = jobs.get_job(session, job_id)
        # Nobody runs it any more to see the cancel flag: it ends now, and its lock goes.
        assert job.status == JobStatus.CANCELLED and jobs.find_unfinished(session, "a") is None
        assert "has ended" in job.report["error"]
