"""Disconnecting stops the connection's imports and exports at once, those under way included."""

from __future__ import annotations

from sislink.classroom import Actor, Classroom
from sislink.classroom.models import AuditEvent, JobStatus
from sislink.classroom.services import connections, jobs


def _connected(classroom: Classroom) -> int:
    with classroom.transaction() as session:
        saved = connections.save_connection(
            session,
            Actor.system(),
            classroom.secret_box,
            partner="generic-1.2",
            version="1.2",
            host_url="https://sis.example.org",
            access_key="key",
            secret_code="not-a-real-secret",
        )
        connections.mark_authorised(session, Actor.system(), saved.id, district_sourced_id="d1")
        return saved.id


def test_disconnect_cancels_queued_jobs_and_asks_running_ones_to_stop(
    classroom: Classroom,
) -> None:
    connection_id = _connected(classroom)
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
        assert queued_job.status == JobStatus.CANCELLED and queued_job.active_lock is None
        assert running_job.status == JobStatus.RUNNING and running_job.cancel_requested
        assert other_job.status == JobStatus.QUEUED and not other_job.cancel_requested
        event = session.query(AuditEvent).filter_by(action="sis.disconnected").one()
        assert event.details == {"jobs_stopped": [ids[0], ids[1]]}
