"""The administrator's Roster page: import now (as a job with live progress), dry run, imports on
hold (approve or discard, with their plans), the schedule and pause window, and the history.

The import runs as the same registered job the scheduler and the command line run
(`sislink.jobs.roster`); this page only queues it and hands it to the background loop.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData
from starlette.responses import JSONResponse, Response

from sislink.classroom import Classroom, ClassroomError
from sislink.classroom.models import Job
from sislink.classroom.services.jobs import lock_key_for
from sislink.classroom.services.time_zone import school_time_zone
from sislink.console.auth import get_classroom
from sislink.console.background import BackgroundWork
from sislink.console.charts import import_history_chart
from sislink.console.i18n import _
from sislink.console.pages.base import (
    PageError,
    Viewer,
    admin_viewer,
    as_page_errors,
    checked,
    checked_form,
    field,
    redirect,
    render,
)
from sislink.jobs import runner, schedule
from sislink.jobs.roster import (  # noqa: F401  (roster_import_job registers the job kind)
    roster_import_job,
    roster_job_report,
)
from sislink.oneroster.consumer import OneRosterError
from sislink.sync import roster_holds
from sislink.sync.activity_history import CHANGES, import_changes
from sislink.sync.errors import SyncError
from sislink.sync.roster_import import DEFAULT_SHRINK_THRESHOLD, import_roster
from sislink.sync.roster_report import ENTITIES
from sislink.sync.sis_client import authorised_connection, open_sis_client

router = APIRouter()


def _page(
    request: Request,
    who: Viewer,
    classroom: Classroom,
    *,
    dry_run: dict[str, Any] | None = None,
    problem: str | None = None,
    schedule_errors: dict[str, str] | None = None,
    typed_schedule: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    try:
        connection = authorised_connection(classroom)
        connected: str | None = None
        connection_id: int | None = connection.id
    except SyncError as exc:
        connected, connection_id = exc.message, None
    running = None
    if connection_id is not None:
        with classroom.session() as session:
            from sislink.classroom.services.jobs import find_unfinished

            busy = find_unfinished(session, lock_key_for(connection_id=connection_id))
            if busy is not None and busy.status != "on_hold":
                running = roster_holds.job_view(busy)
    with classroom.session() as session:
        changes = import_changes(session)
        zone = school_time_zone(session).zone
    return render(
        request,
        "roster.html",
        {
            "not_connected": connected,
            "running": running,
            "holds": roster_holds.holds(classroom),
            "history": roster_holds.history(classroom, limit=20),
            "changes": changes,
            "changes_chart": import_history_chart(changes, zone),
            "schedule": typed_schedule or schedule.get_schedule(classroom).to_dict(),
            "schedule_errors": schedule_errors or {},
            "dry_run": dry_run,
            "problem": problem,
            "entities": ENTITIES,
            "change_words": CHANGES,
        },
        who=who,
        status_code=status_code,
    )


@router.get("/admin/roster")
def roster_page(
    request: Request,
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    return _page(request, who, classroom)


@router.post("/admin/roster/import")
def import_now(
    request: Request,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    """Queue the import and run it in the background; the job page shows its progress."""
    try:
        connection = authorised_connection(classroom)
        job_id = runner.queue(
            classroom,
            kind=roster_holds.ROSTER_IMPORT,
            actor=who.actor,
            lock_key=lock_key_for(connection_id=connection.id),
            connection_id=connection.id,
            params={
                "connection_id": connection.id,
                "full": checked(form, "full"),
                "shrink_threshold": DEFAULT_SHRINK_THRESHOLD,
            },
        )
    except (SyncError, ClassroomError) as exc:
        return _page(request, who, classroom, problem=exc.message, status_code=409)
    background: BackgroundWork = request.app.state.background
    background.submit(runner.execute_job(classroom, job_id))
    return redirect(
        request,
        f"/admin/roster/jobs/{job_id}",
        _("Roster import {job} started.").format(job=job_id),
    )


@router.post("/admin/roster/dry-run")
async def dry_run(
    request: Request,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    """What an import would do now, changing nothing."""
    try:
        connection = authorised_connection(classroom)
        async with open_sis_client(classroom) as client:
            report = await import_roster(
                classroom,
                client,
                connection_id=connection.id,
                full=checked(form, "full"),
                dry_run=True,
            )
    except (SyncError, ClassroomError, OneRosterError) as exc:
        message = exc.message if isinstance(exc, (SyncError, ClassroomError)) else str(exc)
        return _page(request, who, classroom, problem=message, status_code=409)
    # What the import would reject, as its job would say it.
    planned = roster_job_report(report)
    return _page(request, who, classroom, dry_run=planned)


@router.post("/admin/roster/holds/{job_id}/approve")
def approve(
    request: Request,
    job_id: int,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    with as_page_errors():
        roster_holds.approve_hold(classroom, job_id, who.actor)
    return redirect(
        request,
        f"/admin/roster/jobs/{job_id}",
        _("Roster import {job} approved and applied.").format(job=job_id),
    )


@router.post("/admin/roster/holds/{job_id}/discard")
def discard(
    request: Request,
    job_id: int,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    with as_page_errors():
        roster_holds.discard_hold(classroom, job_id, who.actor)
    return redirect(
        request,
        "/admin/roster",
        _("Roster import {job} discarded; nothing was deactivated.").format(job=job_id),
    )


def _date(value: str, label: str, errors: dict[str, str], name: str) -> date | None:
    if not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        errors[name] = _("The {label} {typed} is not a date; write it as 2026-07-01.").format(
            label=label, typed=repr(value)
        )
        return None


@router.post("/admin/roster/schedule")
def save_schedule(
    request: Request,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    errors: dict[str, str] = {}
    typed: dict[str, Any] = {
        "enabled": checked(form, "enabled"),
        "interval_minutes": field(form, "interval_minutes"),
        "pause_from": field(form, "pause_from"),
        "pause_until": field(form, "pause_until"),
    }
    try:
        interval = int(str(typed["interval_minutes"]).strip())
    except ValueError:
        errors["interval_minutes"] = _("Give the interval as a whole number of minutes, e.g. 360.")
        interval = 0
    pause_from = _date(typed["pause_from"], _("pause start"), errors, "pause_from")
    pause_until = _date(typed["pause_until"], _("pause end"), errors, "pause_until")
    if not errors:
        try:
            schedule.set_schedule(
                classroom,
                who.actor,
                schedule.Schedule(bool(typed["enabled"]), interval, pause_from, pause_until),
            )
        except ClassroomError as exc:
            where = "interval_minutes" if "interval" in exc.message else "pause_until"
            errors[where] = exc.message
    if errors:
        return _page(
            request,
            who,
            classroom,
            schedule_errors=errors,
            typed_schedule=typed,
            status_code=400,
        )
    return redirect(request, "/admin/roster", _("Schedule saved."))


@router.get("/admin/roster/jobs/{job_id}")
def job_page(
    request: Request,
    job_id: int,
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    with as_page_errors():
        job = roster_holds.get_roster_job(classroom, job_id)
    return render(request, "roster_job.html", {"job": job, "entities": ENTITIES}, who=who)


@router.get("/admin/jobs/{job_id}/progress")
def job_progress(
    job_id: int,
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    """Any job's progress, for the page's poll (administrators)."""
    with classroom.session() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise PageError(404, _("There is no job {job}.").format(job=job_id))
        return JSONResponse(progress_of(job))


def progress_of(job: Job) -> dict[str, Any]:
    """What the progress poll answers: status, done, total, message, and whether it ended."""
    return {
        "job_id": job.id,
        "status": str(job.status),
        "done": job.progress_done,
        "total": job.progress_total,
        "message": job.progress_message,
        "finished": str(job.status)
        in ("succeeded", "needs_attention", "failed", "cancelled", "on_hold"),
        "error": (job.report or {}).get("error"),
        "attention": (job.report or {}).get("attention"),
    }
