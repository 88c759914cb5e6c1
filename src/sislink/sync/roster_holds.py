"""Roster imports on hold, and their history: approve (apply the held deactivations) or discard.

An import that would deactivate too much of the roster stops with its plan in the Job row
(status on_hold, the lock kept, so no other import of that connection runs meanwhile). An
administrator reads the plan, then approves it (exactly the listed deactivations are applied
and the delta watermark moves as the import would have moved it) or discards it (nothing is
deactivated; the next import finds the same differences and holds again until the SIS is fixed).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sislink.classroom import Actor, Classroom, Conflict, NotFound
from sislink.classroom.models import Job, JobStatus
from sislink.classroom.services import jobs as job_service
from sislink.classroom.services.access import require_admin
from sislink.classroom.services.audit import record_event
from sislink.oneroster.models import format_datetime
from sislink.sync.roster_import import apply_held_deactivations
from sislink.sync.roster_report import RosterReport

ROSTER_IMPORT = "roster_import"


def job_view(job: Job) -> dict[str, Any]:
    """A roster job as plain data (what the CLI prints and the console serves)."""
    return {
        "job_id": job.id,
        "kind": job.kind,
        "status": str(job.status),
        "connection_id": job.connection_id,
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "progress": {
            "done": job.progress_done,
            "total": job.progress_total,
            "message": job.progress_message,
        },
        "params": job.params or {},
        "report": job.report or {},
    }


def holds(classroom: Classroom) -> list[dict[str, Any]]:
    """Roster imports waiting for an administrator, oldest first."""
    with classroom.session() as session:
        found = session.scalars(
            select(Job)
            .where(Job.kind == ROSTER_IMPORT, Job.status == JobStatus.ON_HOLD)
            .order_by(Job.id)
        ).all()
        return [job_view(job) for job in found]


def history(classroom: Classroom, *, limit: int = 20) -> list[dict[str, Any]]:
    """The latest roster imports, newest first."""
    with classroom.session() as session:
        found = job_service.recent_jobs(session, kind=ROSTER_IMPORT, limit=limit)
        return [job_view(job) for job in found]


def get_roster_job(classroom: Classroom, job_id: int) -> dict[str, Any]:
    with classroom.session() as session:
        return job_view(_roster_job(session, job_id))


def approve_hold(classroom: Classroom, job_id: int, actor: Actor) -> dict[str, Any]:
    """Apply a held import's deactivations; the job ends as succeeded. Returns its report."""
    require_admin(actor, "approve a roster import that is on hold")
    _end_if_its_process_is_gone(classroom, job_id)
    with classroom.transaction() as session:
        job = _held(session, job_id)
        report = RosterReport.from_dict(job.report or {})
        if job.connection_id is None or report.started_at is None:
            raise Conflict(f"Roster import {job_id} has no plan to apply; discard it instead.")
        started = datetime.fromisoformat(report.started_at.replace("Z", "+00:00"))
        apply_held_deactivations(session, report, job.connection_id, started=started)
        report.status = "applied"
        report.hold_reason = None
        report.deactivations = {}
        report.finished_at = format_datetime(datetime.now(started.tzinfo))
        done = report.to_dict() | {"approved_by": actor.person_id}
        job_service.finish_job(session, job_id, JobStatus.SUCCEEDED, done)
        record_event(
            session,
            actor,
            "roster.hold_approved",
            f"job:{job_id}",
            {e: c["deactivated"] for e, c in done["counts"].items() if c["deactivated"]},
        )
        return done


def discard_hold(classroom: Classroom, job_id: int, actor: Actor) -> dict[str, Any]:
    """Drop a held import's deactivations; the job ends as cancelled. Returns its report."""
    require_admin(actor, "discard a roster import that is on hold")
    _end_if_its_process_is_gone(classroom, job_id)
    with classroom.transaction() as session:
        job = _held(session, job_id)
        report = dict(job.report or {})
        report.update(status="discarded", deactivations={}, discarded_by=actor.person_id)
        job_service.finish_job(session, job_id, JobStatus.CANCELLED, report)
        record_event(session, actor, "roster.hold_discarded", f"job:{job_id}", {})
        return report


def _roster_job(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None or job.kind != ROSTER_IMPORT:
        raise NotFound(
            f"There is no roster import with job number {job_id}; see the roster imports "
            "(sislink roster history)."
        )
    return job


def _end_if_its_process_is_gone(classroom: Classroom, job_id: int) -> None:
    """An import whose process was killed is failed first (its lock released), so that the
    refusal below says so instead of calling it running."""
    with classroom.transaction() as session:
        job_service.end_if_holder_gone(session, _roster_job(session, job_id))


def _held(session: Session, job_id: int) -> Job:
    job = _roster_job(session, job_id)
    if job.status != JobStatus.ON_HOLD:
        error = (job.report or {}).get("error") if job.status == JobStatus.FAILED else None
        why = f" ({error})" if error else ""
        raise Conflict(
            f"Roster import {job_id} is {str(job.status).replace('_', ' ')}{why}, not on hold; "
            "only a held import can be approved or discarded."
        )
    return job
