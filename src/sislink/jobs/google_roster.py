"""The roster sync to Google Classroom as a job: `run_google_roster_sync` runs one now;
`google_roster_job` is the registered work (the scheduler, the console, the CLI and a worker run
the same function). A sync whose removals pass the shrink guard is held (JobHeld): the job
keeps its lock, so no other sync of the domain runs, until an administrator approves exactly
the listed removals (`approve_hold`: a new sync runs with them allowed) or discards them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sislink.classroom import Actor, Classroom, Conflict, NotFound
from sislink.classroom.models import Job, JobStatus
from sislink.classroom.services import jobs as job_service
from sislink.classroom.services.access import require_admin
from sislink.classroom.services.audit import record_event
from sislink.googleclassroom import ClassroomClient
from sislink.jobs.runner import (
    JobCancelled,
    JobContext,
    JobHeld,
    JobOutcome,
    attention,
    register_job_kind,
    run_job,
)
from sislink.sync.google_roster import (
    DEFAULT_SHRINK_THRESHOLD,
    GOOGLE_ROSTER_SYNC,
    GoogleRosterCancelled,
    GoogleRosterReport,
    google_connection_for_sync,
    sync_roster,
)


def google_roster_job_report(report: GoogleRosterReport) -> dict[str, Any]:
    """The sync's report as its job gives it: warnings (people outside the domain, classes
    without a primary teacher, a course newly declined or archived, a course Classroom would
    not let sislink read, refused calls) make it `needs_attention`. A run that Classroom
    stops as a whole (the connection's error, or most courses failing) fails instead."""
    return report.to_dict() | attention(len(report.warnings), report.warnings)


def lock_key(domain: str) -> str:
    """One roster sync per Google domain at a time."""
    return f"google_roster:{domain}"


async def google_roster_job(
    context: JobContext, *, client: ClassroomClient | None = None
) -> Mapping[str, Any]:
    """Sync the roster to Google Classroom with the job's stored parameters."""
    params = context.params

    def progress(step: str, done: int, total: int | None) -> None:
        context.progress(done, total, step)

    def run() -> GoogleRosterReport:
        return sync_roster(
            context.classroom,
            context.actor,
            dry_run=False,
            activate=bool(params.get("activate")),
            shrink_threshold=float(params.get("shrink_threshold", DEFAULT_SHRINK_THRESHOLD)),
            approved_removals=[tuple(r) for r in params.get("approved_removals") or []],
            client=client,
            should_stop=context.cancelled,
            progress=progress,
        )

    try:
        report = await asyncio.to_thread(run)
    except GoogleRosterCancelled as stopped:
        raise JobCancelled(stopped.report.to_dict()) from None
    if report.status == "on_hold":
        raise JobHeld(report.hold_reason or "on hold", google_roster_job_report(report))
    return google_roster_job_report(report)


register_job_kind(GOOGLE_ROSTER_SYNC, google_roster_job)


async def run_google_roster_sync(
    classroom: Classroom,
    actor: Actor,
    *,
    activate: bool = False,
    shrink_threshold: float = DEFAULT_SHRINK_THRESHOLD,
    approved_removals: list[list[str]] | None = None,
    client: ClassroomClient | None = None,
) -> JobOutcome:
    """Run a roster sync job now. Raises NotConnected without an authorised Google connection
    and Conflict when another sync of the domain is running or on hold."""
    require_admin(actor, "sync the roster to Google Classroom")
    connection = google_connection_for_sync(classroom)

    async def work(context: JobContext) -> Mapping[str, Any]:
        return await google_roster_job(context, client=client)

    return await run_job(
        classroom,
        kind=GOOGLE_ROSTER_SYNC,
        actor=actor,
        work=work,
        lock_key=lock_key(connection.domain),
        params=sync_params(
            activate=activate,
            shrink_threshold=shrink_threshold,
            approved_removals=approved_removals,
        ),
    )


def sync_params(
    *,
    activate: bool = False,
    shrink_threshold: float = DEFAULT_SHRINK_THRESHOLD,
    approved_removals: list[list[str]] | None = None,
) -> dict[str, Any]:
    return {
        "activate": activate,
        "shrink_threshold": shrink_threshold,
        "approved_removals": approved_removals or [],
    }


def queue_google_roster_sync(classroom: Classroom, actor: Actor, *, activate: bool = False) -> int:
    """Queue a sync (the console hands it to its background loop); its job id."""
    from sislink.jobs import runner

    require_admin(actor, "sync the roster to Google Classroom")
    connection = google_connection_for_sync(classroom)
    return runner.queue(
        classroom,
        kind=GOOGLE_ROSTER_SYNC,
        actor=actor,
        lock_key=lock_key(connection.domain),
        params=sync_params(activate=activate),
    )


# ---- history and holds ----------------------------------------------------------------------


def job_view(job: Job) -> dict[str, Any]:
    return {
        "job_id": job.id,
        "kind": job.kind,
        "status": str(job.status),
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "progress": {
            "done": job.progress_done,
            "total": job.progress_total,
            "message": job.progress_message,
        },
        "params": job.params or {},
        "report": job.report or {},
    }


def history(classroom: Classroom, *, limit: int = 20) -> list[dict[str, Any]]:
    """The latest roster syncs, newest first."""
    with classroom.session() as session:
        found = job_service.recent_jobs(session, kind=GOOGLE_ROSTER_SYNC, limit=limit)
        return [job_view(job) for job in found]


def holds(classroom: Classroom) -> list[dict[str, Any]]:
    """Roster syncs waiting for an administrator, oldest first."""
    with classroom.session() as session:
        found = session.scalars(
            select(Job)
            .where(Job.kind == GOOGLE_ROSTER_SYNC, Job.status == JobStatus.ON_HOLD)
            .order_by(Job.id)
        ).all()
        return [job_view(job) for job in found]


def _sync_job(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None or job.kind != GOOGLE_ROSTER_SYNC:
        raise NotFound(f"There is no roster sync to Google Classroom with job number {job_id}.")
    return job


def _held(session: Session, job_id: int) -> Job:
    job = _sync_job(session, job_id)
    if job.status != JobStatus.ON_HOLD:
        raise Conflict(
            f"Roster sync {job_id} is {str(job.status).replace('_', ' ')}, not on hold; only a "
            "held sync can be approved or discarded."
        )
    return job


def queue_approved(classroom: Classroom, job_id: int, actor: Actor) -> int:
    """Approve a held sync's removals: the held job ends (succeeded, "approved") and a new sync
    is queued in which exactly those removals may pass the shrink guard (others still count
    against it). Returns the new job's id (run it with `runner.execute_job`)."""
    from sislink.jobs import runner

    require_admin(actor, "approve a roster sync to Google Classroom that is on hold")
    connection = google_connection_for_sync(classroom)
    with classroom.transaction() as session:
        job = _held(session, job_id)
        report = dict(job.report or {})
        approved = [[h["alias"], h["email"], h["role"]] for h in report.get("held", [])]
        params = dict(job.params or {})
        report.update(status="approved", approved_by=actor.person_id)
        report.pop("attention", None)
        job_service.finish_job(session, job_id, JobStatus.SUCCEEDED, report)
        record_event(
            session,
            actor,
            "google.roster_hold_approved",
            f"job:{job_id}",
            {"removals": len(approved)},
        )
    return runner.queue(
        classroom,
        kind=GOOGLE_ROSTER_SYNC,
        actor=actor,
        lock_key=lock_key(connection.domain),
        params=sync_params(
            activate=bool(params.get("activate")),
            shrink_threshold=float(params.get("shrink_threshold", DEFAULT_SHRINK_THRESHOLD)),
            approved_removals=approved,
        ),
    )


async def approve_hold(
    classroom: Classroom, job_id: int, actor: Actor, *, client: ClassroomClient | None = None
) -> JobOutcome:
    """Approve a held sync's removals (`queue_approved`) and run the new sync now."""
    from sislink.jobs import runner

    new_job = queue_approved(classroom, job_id, actor)

    async def work(context: JobContext) -> Mapping[str, Any]:
        return await google_roster_job(context, client=client)

    return await runner.execute(classroom, new_job, work, actor=actor)


def get_sync_job(classroom: Classroom, job_id: int) -> dict[str, Any]:
    with classroom.session() as session:
        return job_view(_sync_job(session, job_id))


def discard_hold(classroom: Classroom, job_id: int, actor: Actor) -> dict[str, Any]:
    """Drop a held sync's removals: nobody is removed; the job ends cancelled. The next sync
    finds the same differences and holds again until the SIS is right."""
    require_admin(actor, "discard a roster sync to Google Classroom that is on hold")
    with classroom.transaction() as session:
        job = _held(session, job_id)
        report = dict(job.report or {})
        report.update(status="discarded", discarded_by=actor.person_id)
        report.pop("attention", None)
        job_service.finish_job(session, job_id, JobStatus.CANCELLED, report)
        record_event(session, actor, "google.roster_hold_discarded", f"job:{job_id}", {})
        return report
