"""Jobs (imports, exports): record them, their progress and report; one unfinished job per lock."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sislink.classroom.errors import Conflict, InvalidInput, NotFound
from sislink.classroom.models import Job, JobStatus, utc_now
from sislink.classroom.services.access import Actor, flush_or_conflict

FINISHED = frozenset(
    {JobStatus.SUCCEEDED, JobStatus.NEEDS_ATTENTION, JobStatus.FAILED, JobStatus.CANCELLED}
)


def lock_key_for(*, connection_id: int | None = None, class_id: int | None = None) -> str:
    """The lock a job takes: at most one unfinished job per connection, or per class."""
    if class_id is not None:
        return f"class:{class_id}"
    if connection_id is not None:
        return f"connection:{connection_id}"
    raise InvalidInput("A locked job must be about a connection or a class.")


def queue_job(
    session: Session,
    actor: Actor,
    kind: str,
    *,
    connection_id: int | None = None,
    class_id: int | None = None,
    lock_key: str | None = None,
) -> Job:
    """Record a queued job. Conflict if another unfinished job holds the same lock."""
    running = find_unfinished(session, lock_key) if lock_key else None
    if running is not None:
        raise Conflict(_busy(running))
    job = Job(
        kind=kind,
        status=JobStatus.QUEUED,
        connection_id=connection_id,
        class_id=class_id,
        lock_key=lock_key,
        active_lock=lock_key,
        requested_by_id=actor.person_id,
        report={},
    )
    session.add(job)
    flush_or_conflict(
        session, f"Another {kind} job for the same thing started just now; wait for it."
    )
    return job


def start_job(session: Session, job_id: int, *, total: int | None = None) -> Job:
    job = get_job(session, job_id)
    if job.status != JobStatus.QUEUED:
        raise Conflict(f"Job {job.id} is {job.status}, so it cannot start.")
    job.status = JobStatus.RUNNING
    job.started_at = utc_now()
    job.progress_total = total
    return job


def update_progress(
    session: Session, job_id: int, done: int, *, total: int | None = None, message: str = ""
) -> Job:
    job = get_job(session, job_id)
    job.progress_done = done
    if total is not None:
        job.progress_total = total
    job.progress_message = message
    return job


def hold_job(session: Session, job_id: int, reason: str, report: Mapping[str, Any]) -> Job:
    """Put a job on hold for an administrator to review (it keeps its lock)."""
    job = get_job(session, job_id)
    job.status = JobStatus.ON_HOLD
    job.progress_message = reason
    job.report = dict(report)
    return job


def finish_job(session: Session, job_id: int, status: JobStatus, report: Mapping[str, Any]) -> Job:
    """End a job as succeeded, failed or cancelled, with its report; its lock is released."""
    if status not in FINISHED:
        raise InvalidInput(f"A job ends as succeeded, failed or cancelled, not {status}.")
    job = get_job(session, job_id)
    if job.status in FINISHED:
        raise Conflict(f"Job {job.id} already ended as {job.status}.")
    job.status = status
    job.finished_at = utc_now()
    job.report = dict(report)
    job.active_lock = None
    return job


def cancel_connection_jobs(session: Session, connection_id: int) -> list[int]:
    """Ask every unfinished job of a connection to stop (it was disconnected): queued and held
    jobs end now, running ones stop at their next batch. Returns their ids."""
    unfinished = session.scalars(
        select(Job).where(Job.connection_id == connection_id, Job.status.not_in(FINISHED))
    ).all()
    for job in unfinished:
        job.cancel_requested = True
        if job.status in (JobStatus.QUEUED, JobStatus.ON_HOLD):
            finish_job(
                session, job.id, JobStatus.CANCELLED, {**(job.report or {}), "cancelled": True}
            )
    return [job.id for job in unfinished]


def get_job(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"There is no job with id {job_id}.")
    return job


def find_unfinished(session: Session, lock_key: str) -> Job | None:
    return session.scalars(select(Job).where(Job.active_lock == lock_key)).first()


def recent_jobs(
    session: Session,
    *,
    kind: str | None = None,
    connection_id: int | None = None,
    class_id: int | None = None,
    limit: int = 50,
) -> Sequence[Job]:
    statement = select(Job).order_by(Job.created_at.desc(), Job.id.desc())
    if kind is not None:
        statement = statement.where(Job.kind == kind)
    if connection_id is not None:
        statement = statement.where(Job.connection_id == connection_id)
    if class_id is not None:
        statement = statement.where(Job.class_id == class_id)
    return session.scalars(statement.limit(limit)).all()


def _busy(job: Job) -> str:
    return (
        f"A {job.kind} job (number {job.id}) is already {str(job.status).replace('_', ' ')} "
        "for the same thing; wait for it to finish, or cancel it."
    )
