"""The administrator's Google Classroom page: the key file and an administrator's email,
Connect, Authorise (each check shown, or the failure with its fix), Disconnect; and the roster
sync into Classroom: sync now (a job, in the background), a dry run's preview, syncs held by
the shrink guard (approve, with what it removes, or discard) and the history of runs.

Every action calls `sislink.sync.google_connection` or `sislink.jobs.google_roster`, as the
command line and the REST API do.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData, UploadFile
from starlette.responses import Response

from sislink.classroom import Classroom, ClassroomError
from sislink.console.auth import get_classroom
from sislink.console.background import BackgroundWork
from sislink.console.i18n import _
from sislink.console.pages.base import (
    Viewer,
    admin_viewer,
    as_page_errors,
    checked,
    checked_form,
    field,
    redirect,
    render,
)
from sislink.jobs import google_roster as roster_job
from sislink.jobs import runner
from sislink.sync import google_connection as service
from sislink.sync.errors import (
    AuthorisationFailed,
    InvalidConnectionDetails,
    NotConnected,
    SyncError,
)
from sislink.sync.google_connection import DEFAULT_API_ENDPOINT, SCOPES
from sislink.sync.google_roster import GoogleError, sync_roster

router = APIRouter(prefix="/admin/google")


def _page(
    request: Request,
    who: Viewer,
    classroom: Classroom,
    *,
    typed: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    authorise_problem: AuthorisationFailed | None = None,
    roster_dry_run: dict[str, Any] | None = None,
    roster_problem: str | None = None,
    status_code: int = 200,
) -> Response:
    current = service.status(classroom)
    context: dict[str, Any] = {
        "roster_history": roster_job.history(classroom, limit=10),
        "roster_holds": roster_job.holds(classroom),
        "roster_dry_run": roster_dry_run,
        "roster_problem": roster_problem,
        "current": current.as_dict() if current else None,
        "typed": typed or {"api_endpoint": DEFAULT_API_ENDPOINT},
        "errors": errors or {},
        "authorise_problem": authorise_problem,
        "scopes": SCOPES,
        "default_endpoint": DEFAULT_API_ENDPOINT,
    }
    return render(request, "google.html", context, who=who, status_code=status_code)


@router.get("")
def google_page(
    request: Request,
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    return _page(request, who, classroom)


async def _key_text(form: FormData) -> str:
    upload = form.get("key_upload")
    if isinstance(upload, UploadFile):
        data = await upload.read()
        if data:
            return data.decode("utf-8", "replace")
    return field(form, "key_file")


@router.post("/connect")
async def connect(
    request: Request,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    typed = {name: field(form, name).strip() for name in ("admin_email", "domain", "api_endpoint")}
    key_text = await _key_text(form)
    errors: dict[str, str] = {}
    if not key_text.strip():
        errors["key_file"] = _("Choose the service account's JSON key file (or paste it).")
    if not typed["admin_email"]:
        errors["admin_email"] = _("Type the email of an administrator of your Google domain.")
    if errors:
        return _page(request, who, classroom, typed=typed, errors=errors, status_code=400)
    with as_page_errors():
        try:
            service.connect(
                classroom,
                who.actor,
                key_file_text=key_text,
                admin_email=typed["admin_email"],
                domain=typed["domain"] or None,
                api_endpoint=typed["api_endpoint"] or DEFAULT_API_ENDPOINT,
            )
        except InvalidConnectionDetails as exc:
            where = "key_file" if "key" in exc.message else "admin_email"
            if "web address" in exc.message:
                where = "api_endpoint"
            return _page(
                request, who, classroom, typed=typed, errors={where: exc.message}, status_code=400
            )
    return redirect(
        request,
        "/admin/google",
        _("Saved. The key is stored sealed; now click Authorise to check it with Google."),
    )


@router.post("/authorise")
def authorise(
    request: Request,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    with as_page_errors():
        try:
            service.authorise(classroom, who.actor)
        except AuthorisationFailed as exc:
            return _page(request, who, classroom, authorise_problem=exc, status_code=422)
        except NotConnected as exc:
            return redirect(request, "/admin/google", exc.message)
    return redirect(
        request, "/admin/google", _("Authorised: sislink can work with Google Classroom.")
    )


@router.post("/disconnect")
def disconnect(
    request: Request,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    with as_page_errors():
        try:
            view = service.disconnect(classroom, who.actor)
        except NotConnected as exc:
            return redirect(request, "/admin/google", exc.message)
    return redirect(
        request,
        "/admin/google",
        _(
            "Disconnected from {domain}: the key is erased; nothing in Google Classroom was "
            "removed."
        ).format(domain=view.domain),
    )


@router.post("/roster-sync")
def roster_sync(
    request: Request,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    """Queue a roster sync and run it in the background; the history shows how it ended."""
    try:
        job_id = roster_job.queue_google_roster_sync(
            classroom, who.actor, activate=checked(form, "activate")
        )
    except (SyncError, ClassroomError) as exc:
        return _page(request, who, classroom, roster_problem=exc.message, status_code=409)
    background: BackgroundWork = request.app.state.background
    background.submit(runner.execute_job(classroom, job_id))
    return redirect(
        request,
        "/admin/google",
        _("Roster sync {job} started: its report appears under Roster syncs when it ends.").format(
            job=job_id
        ),
    )


@router.post("/roster-sync/dry-run")
def roster_dry_run(
    request: Request,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    """What a sync would do now: Classroom is read, nothing is written."""
    try:
        report = sync_roster(classroom, who.actor, dry_run=True, activate=checked(form, "activate"))
    except (SyncError, ClassroomError, GoogleError) as exc:
        return _page(request, who, classroom, roster_problem=exc.message, status_code=409)
    planned = roster_job.google_roster_job_report(report)
    return _page(request, who, classroom, roster_dry_run=planned)


@router.post("/roster-sync/{job_id}/approve")
def roster_approve(
    request: Request,
    job_id: int,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    with as_page_errors():
        new_job = roster_job.queue_approved(classroom, job_id, who.actor)
    background: BackgroundWork = request.app.state.background
    background.submit(runner.execute_job(classroom, new_job))
    return redirect(
        request,
        "/admin/google",
        _(
            "Roster sync {job} approved: sync {new_job} removes exactly the people it listed."
        ).format(job=job_id, new_job=new_job),
    )


@router.post("/roster-sync/{job_id}/discard")
def roster_discard(
    request: Request,
    job_id: int,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    with as_page_errors():
        roster_job.discard_hold(classroom, job_id, who.actor)
    return redirect(
        request,
        "/admin/google",
        _("Roster sync {job} discarded: nobody was removed.").format(job=job_id),
    )
