"""REST API for the roster import under /api/admin/roster: import now (or dry run), holds,
approve/discard, history, one job, cancel, and the schedule. Admin-only; each route calls the
same services as `sislink roster ...`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, Field

from sislink.classroom import Actor, Classroom, ClassroomError, Conflict, NotFound, PermissionDenied
from sislink.console.auth import admin_actor, get_classroom
from sislink.console.routes.problems import RosterJobId
from sislink.jobs.roster import run_roster_import
from sislink.jobs.runner import request_cancel
from sislink.jobs.schedule import MAX_INTERVAL_MINUTES, Schedule, get_schedule, set_schedule
from sislink.oneroster.consumer import OneRosterError
from sislink.sync import roster_holds
from sislink.sync.errors import NotConnected, SyncError
from sislink.sync.roster_import import import_roster
from sislink.sync.sis_client import authorised_connection, open_sis_client

router = APIRouter()


@contextmanager
def answered_plainly() -> Iterator[None]:
    """Service errors become HTTP errors whose `detail` is the service's one sentence."""
    try:
        yield
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except Conflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except PermissionDenied as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    except NotConnected as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except (ClassroomError, SyncError) as exc:
        raise HTTPException(422, str(exc)) from None
    except OneRosterError as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, str(exc)) from None


class ImportRequest(BaseModel):
    full: bool = Field(False, description="Read everything and deactivate what the SIS dropped.")
    dry_run: bool = Field(False, description="Return the plan; change nothing.")


class ScheduleBody(BaseModel):
    enabled: bool = True
    interval_minutes: int = Field(360, ge=5, le=MAX_INTERVAL_MINUTES)
    pause_from: date | None = None
    pause_until: date | None = None


def _public(report: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in report.items() if key != "deactivations"}


@router.post("/imports")
async def start_import(
    body: ImportRequest,
    actor: Actor = Depends(admin_actor),
    classroom: Classroom = Depends(get_classroom),
) -> dict[str, Any]:
    """Run an import now (as a job) and return its report; a dry run returns the plan."""
    with answered_plainly():
        if body.dry_run:
            connection = authorised_connection(classroom)
            async with open_sis_client(classroom) as client:
                report = await import_roster(
                    classroom, client, connection_id=connection.id, full=body.full, dry_run=True
                )
            return {"job_id": None, "job_status": None, **_public(report.to_dict())}
        outcome = await run_roster_import(classroom, actor, full=body.full)
    if outcome.error and str(outcome.status) == "failed":
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, outcome.error)
    return {"job_id": outcome.job_id, "job_status": str(outcome.status), **_public(outcome.report)}


@router.get("/holds")
def list_holds(
    _actor: Actor = Depends(admin_actor), classroom: Classroom = Depends(get_classroom)
) -> list[dict[str, Any]]:
    """Imports on hold, each with its plan (the complete lists of what it would deactivate)."""
    return roster_holds.holds(classroom)


@router.post("/holds/{job_id}/approve")
def approve(
    job_id: RosterJobId,
    actor: Actor = Depends(admin_actor),
    classroom: Classroom = Depends(get_classroom),
) -> dict[str, Any]:
    with answered_plainly():
        return {"job_id": job_id, **_public(roster_holds.approve_hold(classroom, job_id, actor))}


@router.post("/holds/{job_id}/discard")
def discard(
    job_id: RosterJobId,
    actor: Actor = Depends(admin_actor),
    classroom: Classroom = Depends(get_classroom),
) -> dict[str, Any]:
    with answered_plainly():
        roster_holds.discard_hold(classroom, job_id, actor)
    return {"job_id": job_id, "status": "cancelled", "discarded": True}


@router.get("/history")
def history(
    limit: int = Query(20, ge=1, le=200),
    _actor: Actor = Depends(admin_actor),
    classroom: Classroom = Depends(get_classroom),
) -> list[dict[str, Any]]:
    jobs = roster_holds.history(classroom, limit=limit)
    return [{**job, "report": _public(job["report"])} for job in jobs]


@router.get("/jobs/{job_id}")
def job(
    job_id: RosterJobId,
    _actor: Actor = Depends(admin_actor),
    classroom: Classroom = Depends(get_classroom),
) -> dict[str, Any]:
    """One import: status, progress (for a progress bar) and report."""
    with answered_plainly():
        return roster_holds.get_roster_job(classroom, job_id)


@router.post("/jobs/{job_id}/cancel")
def cancel(
    job_id: RosterJobId,
    actor: Actor = Depends(admin_actor),
    classroom: Classroom = Depends(get_classroom),
) -> dict[str, Any]:
    with answered_plainly():
        roster_holds.get_roster_job(classroom, job_id)
        now = request_cancel(classroom, job_id, actor)
    return {"job_id": job_id, "status": str(now), "cancel_requested": True}


@router.get("/schedule")
def read_schedule(
    _actor: Actor = Depends(admin_actor), classroom: Classroom = Depends(get_classroom)
) -> dict[str, Any]:
    return get_schedule(classroom).to_dict()


@router.put("/schedule")
def write_schedule(
    body: ScheduleBody,
    actor: Actor = Depends(admin_actor),
    classroom: Classroom = Depends(get_classroom),
) -> dict[str, Any]:
    with answered_plainly():
        saved = set_schedule(
            classroom,
            actor,
            Schedule(body.enabled, body.interval_minutes, body.pause_from, body.pause_until),
        )
    return saved.to_dict()
