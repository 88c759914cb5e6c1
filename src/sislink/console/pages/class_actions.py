"""What the command line can do that the pages offer too: export every class I teach (with its
progress and each class's outcome), cancel a running export or roster import, download the
gradebook as a sheet and import one, and confirm a held roster import (approve or discard)
after reading what it will deactivate.

The work is the services' and the job runner's, as the command line does it; these routes only
check who is asking and show what happened.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile
from starlette.responses import JSONResponse, Response

from sislink.classroom import Classroom, ClassroomError
from sislink.classroom.models import Class, Job
from sislink.classroom.services import gradebook_sheet
from sislink.console.auth import get_classroom
from sislink.console.background import BackgroundWork
from sislink.console.i18n import _, status_words
from sislink.console.pages.base import (
    PageError,
    Viewer,
    admin_viewer,
    as_page_errors,
    checked,
    checked_form,
    redirect,
    render,
    teacher_viewer,
)
from sislink.console.pages.classes import own_class
from sislink.console.pages.roster import progress_of
from sislink.jobs import runner
from sislink.jobs.mark_export import ALL_EXPORT, all_exports_job, queue_export
from sislink.sync import preflight, roster_holds
from sislink.sync.export_report import job_reports

router = APIRouter()

# A sheet bigger than this is not a gradebook (35 students x 40 coursework is ~10 kB).
MAX_SHEET_BYTES = 2_000_000


# ---- export every class I teach --------------------------------------------------------------


@router.post("/classes/export-all")
def export_all(
    request: Request,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(teacher_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    """Queue the export of every linked class the viewer may export, run it in the background,
    and follow it on its own page."""
    try:
        job = all_exports_job(classroom, who.actor, dry_run=checked(form, "dry_run"))
        job_id = queue_export(classroom, who.actor, job)
    except preflight.ExportRefused as refused:
        raise PageError(403, refused.message) from None
    except ClassroomError as exc:
        raise PageError(409, exc.message) from None
    background: BackgroundWork = request.app.state.background
    background.submit(runner.execute_job(classroom, job_id))
    return redirect(request, f"/classes/exports/{job_id}")


def _own_job(session: Session, who: Viewer, job_id: int, *, kind: str | None = None) -> Job:
    """The job, if the viewer started it (administrators: any job); 404 otherwise."""
    job = session.get(Job, job_id)
    if (
        job is None
        or (kind is not None and job.kind != kind)
        or (not who.is_admin and job.requested_by_id != who.person_id)
    ):
        raise PageError(404, _("You have no export {job}.").format(job=job_id))
    return job


@router.get("/classes/exports/{job_id}")
def export_all_page(
    request: Request,
    job_id: int,
    who: Viewer = Depends(teacher_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    with classroom.session() as session:
        job = _own_job(session, who, job_id, kind=ALL_EXPORT)
        progress = progress_of(job)
        report: dict[str, Any] = dict(job.report or {})
        # A job that failed keeps only its error: each class's outcome is in its own report.
        each = report.get("classes") or job_reports(session, job_id, with_items=False)
    return render(
        request,
        "export_all.html",
        {"job": progress, "classes": each, "report": report},
        who=who,
    )


@router.get("/classes/exports/{job_id}/progress")
def export_all_progress(
    job_id: int,
    who: Viewer = Depends(teacher_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    with classroom.session() as session:
        return JSONResponse(progress_of(_own_job(session, who, job_id, kind=ALL_EXPORT)))


# ---- cancel ---------------------------------------------------------------------------------


def _cancelled_words(job_id: int, status: str) -> str:
    if status == "cancelled":
        return _("Job {job} is cancelled; what it had already sent stays sent.").format(job=job_id)
    return _("Job {job} stops after the batch it is working on; what it sent stays sent.").format(
        job=job_id
    )


@router.post("/classes/exports/{job_id}/cancel")
def cancel_export_all(
    request: Request,
    job_id: int,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(teacher_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    with classroom.session() as session:
        _own_job(session, who, job_id, kind=ALL_EXPORT)
    with as_page_errors():
        status = runner.request_cancel(classroom, job_id, who.actor)
    return redirect(request, f"/classes/exports/{job_id}", _cancelled_words(job_id, status))


@router.post("/classes/{class_id}/jobs/{job_id}/cancel")
def cancel_class_export(
    request: Request,
    class_id: int,
    job_id: int,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(teacher_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    """Cancel this class's export that the viewer started (administrators: any)."""
    with classroom.session() as session:
        own_class(session, who, class_id)
        job = session.get(Job, job_id)
        if job is None or job.class_id != class_id:
            raise PageError(404, _("This class has no export {job}.").format(job=job_id))
    with as_page_errors():
        status = runner.request_cancel(classroom, job_id, who.actor)
    return redirect(
        request, f"/classes/{class_id}/export/{job_id}", _cancelled_words(job_id, status)
    )


@router.post("/admin/jobs/{job_id}/cancel")
def cancel_job(
    request: Request,
    job_id: int,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    """An administrator cancels any running job (a roster import, an export)."""
    with classroom.session() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise PageError(404, _("There is no job {job}.").format(job=job_id))
        kind = job.kind
    with as_page_errors():
        status = runner.request_cancel(classroom, job_id, who.actor)
    back = (
        f"/admin/roster/jobs/{job_id}" if kind == roster_holds.ROSTER_IMPORT else "/admin/activity"
    )
    return redirect(request, back, _cancelled_words(job_id, status))


# ---- a held roster import: read what it does, then approve or discard ------------------------


@router.get("/admin/roster/holds/{job_id}/{action}")
def confirm_hold(
    request: Request,
    job_id: int,
    action: str,
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    if action not in ("approve", "discard"):
        raise PageError(404, _("A held import can be approved or discarded."))
    with as_page_errors():
        job = roster_holds.get_roster_job(classroom, job_id)
    if job["status"] != "on_hold":
        raise PageError(
            409,
            _("Roster import {job} is not on hold any more; it is {status}.").format(
                job=job_id, status=status_words(job["status"])
            ),
        )
    deactivations = job["report"].get("deactivations") or {}
    return render(
        request,
        "roster_hold_confirm.html",
        {
            "job": job,
            "action": action,
            "deactivations": deactivations,
            "total": sum(len(ids) for ids in deactivations.values()),
        },
        who=who,
    )


# ---- the gradebook as a sheet ----------------------------------------------------------------


@router.get("/classes/{class_id}/gradebook.csv")
def download_gradebook(
    class_id: int,
    who: Viewer = Depends(teacher_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    with as_page_errors(), classroom.session() as session:
        klass = own_class(session, who, class_id)
        text = gradebook_sheet.write_sheet(session, who.actor, class_id)
        disposition = _attachment(klass)
    return Response(
        # A byte order mark: Excel then reads the sheet as UTF-8 (names with accents).
        "\ufeff" + text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": disposition},
    )


def _file_name(klass: Class, *, ascii_only: bool = False) -> str:
    safe = "".join(
        c if c.isalnum() and (c.isascii() or not ascii_only) else "-" for c in klass.title
    ).strip("-")[:60]
    return f"gradebook-{safe or klass.id}.csv"


def _attachment(klass: Class) -> str:
    """The sheet's Content-Disposition: the file named in the class's own words (RFC 6266's
    filename*, UTF-8), and a plain ASCII name for browsers that do not read it. A header is
    Latin-1: a title in Cyrillic, Chinese or Polish written as it is was a 500."""
    plain = _file_name(klass, ascii_only=True)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(_file_name(klass))}"


@router.get("/classes/{class_id}/gradebook/import")
def import_page(
    request: Request,
    class_id: int,
    who: Viewer = Depends(teacher_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    with classroom.session() as session:
        title = own_class(session, who, class_id).title
    return render(request, "gradebook_import.html", {"class_id": class_id, "title": title}, who=who)


@router.post("/classes/{class_id}/gradebook/import")
async def import_gradebook(
    request: Request,
    class_id: int,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(teacher_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    with classroom.session() as session:
        title = own_class(session, who, class_id).title
    upload = form.get("sheet")
    context: dict[str, Any] = {"class_id": class_id, "title": title}
    if not isinstance(upload, UploadFile) or not upload.filename:
        context["problem"] = _("Choose the sheet to import (a .csv file saved from a spreadsheet).")
        return render(request, "gradebook_import.html", context, who=who, status_code=400)
    raw = await upload.read(MAX_SHEET_BYTES + 1)
    if len(raw) > MAX_SHEET_BYTES:
        context["problem"] = (
            f"{upload.filename} is larger than {MAX_SHEET_BYTES // 1_000_000} MB, which no "
            "gradebook is; choose the class's sheet. Nothing was imported."
        )
        return render(request, "gradebook_import.html", context, who=who, status_code=400)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        context["problem"] = (
            f"{upload.filename} is not UTF-8 text; save it from your spreadsheet as "
            "'CSV UTF-8' and import it again. Nothing was imported."
        )
        return render(request, "gradebook_import.html", context, who=who, status_code=400)
    try:
        with classroom.transaction() as session:
            done = gradebook_sheet.import_sheet(
                session,
                who.actor,
                class_id,
                gradebook_sheet.read_sheet(text),
                returned=checked(form, "returned"),
            )
    except ClassroomError as exc:
        context["problem"] = exc.message
        return render(request, "gradebook_import.html", context, who=who, status_code=400)
    context["done"] = done
    context["returned"] = checked(form, "returned")
    return render(request, "gradebook_import.html", context, who=who)
