"""REST API for administrators under /api/admin/google: the Google Classroom connection (status,
connect, authorise, disconnect) and the roster sync into Classroom (`/roster-sync`: run or dry
run, history and holds, one run, approve or discard a hold). Admin-only; no logic here: each
route calls `sislink.sync.google_connection` or `sislink.jobs.google_roster`, the same services
as `sislink google ...`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from pydantic import BaseModel, Field, SecretStr

from sislink.classroom import Actor, Classroom
from sislink.console.auth import admin_actor, get_classroom
from sislink.console.routes.admin import answered_plainly
from sislink.console.routes.problems import ProblemAnswer, storable
from sislink.jobs.google_roster import (
    approve_hold,
    discard_hold,
    get_sync_job,
    google_roster_job_report,
    history,
    holds,
    run_google_roster_sync,
)
from sislink.sync import google_connection as service
from sislink.sync.google_connection import DEFAULT_API_ENDPOINT
from sislink.sync.google_roster import GoogleError, sync_roster

router = APIRouter()


class GoogleConnectRequest(BaseModel):
    """The service account's JSON key file (its text) and an administrator's email. The key is
    stored sealed and never echoed back or logged."""

    key_file: SecretStr = Field(description="The JSON key file's text.")
    admin_email: str
    domain: str | None = None
    api_endpoint: str = DEFAULT_API_ENDPOINT


@router.get("/connection")
def google_status(
    actor: Actor = Depends(admin_actor), classroom: Classroom = Depends(get_classroom)
) -> dict[str, Any]:
    view = service.status(classroom)
    return {"connected": view is not None, "connection": view.as_dict() if view else None}


@router.post("/connection", status_code=status.HTTP_201_CREATED)
def google_connect(
    body: GoogleConnectRequest,
    actor: Actor = Depends(admin_actor),
    classroom: Classroom = Depends(get_classroom),
) -> dict[str, Any]:
    with answered_plainly():
        return service.connect(
            classroom,
            actor,
            key_file_text=body.key_file.get_secret_value(),
            admin_email=body.admin_email,
            domain=body.domain,
            api_endpoint=body.api_endpoint,
        ).as_dict()


@router.post("/connection/authorise")
def google_authorise(
    actor: Actor = Depends(admin_actor), classroom: Classroom = Depends(get_classroom)
) -> dict[str, Any]:
    # A plain function: the client is synchronous (threads), so FastAPI runs it off the loop.
    with answered_plainly():
        return service.authorise(classroom, actor).as_dict()


@router.post("/connection/disconnect")
def google_disconnect(
    actor: Actor = Depends(admin_actor), classroom: Classroom = Depends(get_classroom)
) -> dict[str, Any]:
    with answered_plainly():
        return service.disconnect(classroom, actor).as_dict()


# ---- the roster into Google Classroom (sislink.jobs.google_roster) ------------------------------


class RosterSyncRequest(BaseModel):
    dry_run: bool = Field(False, description="Read Classroom and return the plan; change nothing.")
    activate: bool = Field(
        False, description="Create new courses ACTIVE (default PROVISIONED: the teacher accepts)."
    )


CLASSROOM_FAILED: dict[int | str, dict[str, Any]] = {
    502: {
        "model": ProblemAnswer,
        "description": "Google Classroom failed or refused; the message gives its words.",
    }
}


def _sync_job_id(job_id: Annotated[int, Path(description="The roster sync job's id.")]) -> int:
    if not storable(job_id):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            {
                "problem": "not_found",
                "message": f"There is no roster sync with job number {job_id}.",
            },
        )
    return job_id


SyncJobId = Annotated[int, Depends(_sync_job_id)]


@contextmanager
def _roster_answers() -> Iterator[None]:
    """Google Classroom could not be read (a dry run): 502 with its one sentence."""
    try:
        yield
    except GoogleError as exc:
        raise HTTPException(
            status.HTTP_502_BAD_GATEWAY, {"problem": "classroom", "message": str(exc)}
        ) from None


@router.post("/roster-sync", responses=CLASSROOM_FAILED)
async def roster_sync(
    body: RosterSyncRequest,
    actor: Actor = Depends(admin_actor),
    classroom: Classroom = Depends(get_classroom),
) -> dict[str, Any]:
    """Sync the roster into Google Classroom now (as a job) and return its report; a dry run
    returns what it would do. A sync held by the shrink guard answers with status on_hold."""
    with answered_plainly(), _roster_answers():
        if body.dry_run:
            report = await asyncio.to_thread(
                sync_roster, classroom, actor, dry_run=True, activate=body.activate
            )
            return {"job_id": None, "job_status": None, **google_roster_job_report(report)}
        outcome = await run_google_roster_sync(classroom, actor, activate=body.activate)
        return {**outcome.report, "job_id": outcome.job_id, "job_status": str(outcome.status)}


@router.get("/roster-sync")
def roster_sync_runs(
    limit: int = Query(20, ge=1, le=200),
    actor: Actor = Depends(admin_actor),
    classroom: Classroom = Depends(get_classroom),
) -> dict[str, Any]:
    """The latest roster syncs (newest first) and those held for an administrator."""
    return {"history": history(classroom, limit=limit), "holds": holds(classroom)}


@router.get("/roster-sync/{job_id}")
def roster_sync_job(
    job_id: SyncJobId,
    actor: Actor = Depends(admin_actor),
    classroom: Classroom = Depends(get_classroom),
) -> dict[str, Any]:
    with answered_plainly():
        return get_sync_job(classroom, job_id)


@router.post("/roster-sync/{job_id}/approve", responses=CLASSROOM_FAILED)
async def roster_sync_approve(
    job_id: SyncJobId,
    actor: Actor = Depends(admin_actor),
    classroom: Classroom = Depends(get_classroom),
) -> dict[str, Any]:
    """Approve a held sync's removals: a new sync runs with exactly them allowed; its report."""
    with answered_plainly(), _roster_answers():
        outcome = await approve_hold(classroom, job_id, actor)
        return {**outcome.report, "job_id": outcome.job_id, "job_status": str(outcome.status)}


@router.post("/roster-sync/{job_id}/discard")
def roster_sync_discard(
    job_id: SyncJobId,
    actor: Actor = Depends(admin_actor),
    classroom: Classroom = Depends(get_classroom),
) -> dict[str, Any]:
    """Discard a held sync's removals: nobody is removed."""
    with answered_plainly(), _roster_answers():
        return {"job_id": job_id, **discard_hold(classroom, job_id, actor)}
