"""REST API for teachers under /api/teacher: their classes, links, coursework, marks, exports.

A teacher sees and changes only the classes they teach (an administrator sees all). Each route
calls the same services as the command line (`sislink classes/coursework/marks ...`); errors
answer `{"detail": {"problem": ..., "message": ...}}` in plain words (see `answered_plainly`).
An export is queued as a job and its id returned at once (202); the job runs after the
response, and `GET /jobs/{id}` shows its progress and summary.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from sislink.classroom import Actor, Classroom, InvalidInput, NotFound
from sislink.classroom.models import (
    Category,
    Class,
    Coursework,
    Job,
    MarkExportReport,
    Person,
)
from sislink.classroom.services import connections, export_settings
from sislink.classroom.services import coursework as coursework_service
from sislink.classroom.services import marks as mark_service
from sislink.classroom.services.access import class_for_editing, teaches
from sislink.classroom.services.api_tokens import list_api_tokens, revoke_api_token
from sislink.classroom.services.classes import classes_taught_by
from sislink.classroom.services.people import find_student_of_class
from sislink.classroom.services.time_zone import due_at_noon
from sislink.console.auth import current_actor, get_classroom
from sislink.console.routes.admin import answered_plainly
from sislink.console.routes.problems import ClassId, CourseworkId, JobId, ReportId, TokenId
from sislink.jobs import mark_export as mark_export_job
from sislink.jobs import runner
from sislink.jobs.mark_export import ALL_EXPORT, CLASS_EXPORT
from sislink.oneroster.consumer import OneRosterError
from sislink.sync import class_link, preflight
from sislink.sync.export_report import report_history, stored_report_json
from sislink.sync.sis_client import open_sis_client

router = APIRouter()

# Whole-export refusals that are about who asks (403) rather than the state of things (409).
FORBIDDEN_REFUSALS = frozenset({preflight.Refusal.PERMISSION_OFF, preflight.Refusal.NOT_YOUR_CLASS})
EXPORT_KINDS = frozenset({CLASS_EXPORT, ALL_EXPORT})


@contextmanager
def teacher_errors() -> Iterator[None]:
    """The admin API's translation, plus export refusals and SIS errors in the same shape."""
    with answered_plainly():
        try:
            yield
        except preflight.ExportRefused as exc:
            code = (
                status.HTTP_403_FORBIDDEN
                if exc.reason in FORBIDDEN_REFUSALS
                else status.HTTP_409_CONFLICT
            )
            raise HTTPException(
                code, {"problem": exc.reason.value, "message": exc.message}
            ) from None
        except class_link.TeacherNotInSis as exc:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, {"problem": "teacher_not_in_sis", "message": exc.message}
            ) from None
        except OneRosterError as exc:
            # The SIS itself failed or refused: say so in its words, as a bad gateway.
            raise HTTPException(
                status.HTTP_502_BAD_GATEWAY, {"problem": "sis_error", "message": exc.message}
            ) from None


def _problem(code: int, problem: str, message: str) -> HTTPException:
    return HTTPException(code, {"problem": problem, "message": message})


# ---- request bodies ------------------------------------------------------------------------


class LinkRequest(BaseModel):
    sis_class_id: str = Field(min_length=1, description="The SIS class's sourcedId.")


class CourseworkRequest(BaseModel):
    title: str
    points: float | None = Field(100, ge=0, description="Max points; null for no score.")
    due: str | None = Field(
        None,
        description=(
            "2026-10-01 (due at noon in the school's time zone) or a date-time with a zone, "
            "2026-10-01T09:00Z."
        ),
    )
    category: str | None = Field(None, description="A category title of the class.")
    description: str = ""
    draft: bool = Field(False, description="Keep it a draft (drafts are not exported).")


class MarkRequest(BaseModel):
    student: str = Field(description="The student's email, or their SIS identifier.")
    score: float | str | None = None
    excused: bool = False
    missing: bool = False
    comment: str | None = None
    draft: bool = Field(
        False, description="Make it a draft (not returned, not exported), even if it was returned."
    )


class ExportChoicesRequest(BaseModel):
    """Only what is given changes; an unknown field is refused rather than ignored."""

    model_config = ConfigDict(extra="forbid")

    missing_as: str | None = Field(
        None,
        description="What a missing mark becomes in the SIS: 'zero' (a score of 0) or "
        "'not_submitted' (scoreStatus 'not submitted', no score; 'not-submitted' also reads).",
    )
    export_drafts: bool | None = Field(
        None, description="Export draft marks too (false: only marks returned to students)."
    )
    extra_credit_limit: float | None = Field(
        None,
        description="How many times its points a coursework's mark may be (extra credit), "
        "from 1 (none) to 100; 2 unless changed. A higher mark is refused.",
    )


class ExportRequest(BaseModel):
    dry_run: bool = Field(False, description="Check and report what would be sent; send nothing.")


# ---- views ---------------------------------------------------------------------------------


def _class_view(session: Session, klass: Class) -> dict[str, Any]:
    state = connections.link_states(session, [klass])[klass.id]
    teacher = session.get(Person, klass.primary_teacher_id) if klass.primary_teacher_id else None
    return {
        "id": klass.id,
        "title": klass.title,
        "section": klass.section,
        "primary_teacher": teacher.email if teacher else None,
        "imported": klass.sis_sourced_id is not None,
        **state.as_json(),
    }


def _coursework_view(session: Session, work: Coursework) -> dict[str, Any]:
    category = session.get(Category, work.category_id) if work.category_id else None
    return {
        "id": work.id,
        "class_id": work.class_id,
        "title": work.title,
        "description": work.description,
        "points": work.max_points,
        "due": work.due_date.isoformat() if work.due_date else None,
        "category": category.title if category else None,
        "state": str(work.state),
        "export_to_sis": work.export_to_sis,
    }


def _job_view(job: Job) -> dict[str, Any]:
    return {
        "job_id": job.id,
        "kind": job.kind,
        "status": str(job.status),
        "class_id": job.class_id,
        "progress": {
            "done": job.progress_done,
            "total": job.progress_total,
            "message": job.progress_message,
        },
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "report": job.report or {},
    }


def _due(session: Session, text: str | None) -> datetime | None:
    """A due date: `2026-10-01` (noon in the school's time zone: that day for the school) or a
    date-time with a zone (`2026-10-01T09:00Z`)."""
    if text is None or not text.strip():
        return None
    cleaned = text.strip()
    try:
        if len(cleaned) == 10:
            return due_at_noon(session, date.fromisoformat(cleaned))
        moment = datetime.fromisoformat(cleaned.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"The due date {text!r} is not a date; write it as 2026-10-01 or 2026-10-01T09:00Z."
        ) from None
    if moment.tzinfo is None:
        raise InvalidInput(f"The due date {text!r} needs a time zone, e.g. 2026-10-01T09:00Z.")
    return moment


def _category_id(session: Session, class_id: int, title: str | None) -> int | None:
    if not title or not title.strip():
        return None
    found = session.scalars(select(Category).where(Category.class_id == class_id)).all()
    for category in found:
        if category.title.casefold() == title.strip().casefold():
            return category.id
    offered = ", ".join(c.title for c in found) or "none yet (link the class to get the SIS's)"
    raise InvalidInput(f"The class has no category {title!r}; its categories: {offered}.")


def _coursework_of(session: Session, class_id: int, coursework_id: int) -> Coursework:
    work = session.get(Coursework, coursework_id)
    if work is None or work.class_id != class_id:
        raise NotFound(f"Class {class_id} has no coursework with id {coursework_id}.")
    return work


# ---- classes and links ---------------------------------------------------------------------


@router.get("/classes")
def my_classes(
    actor: Actor = Depends(current_actor), classroom: Classroom = Depends(get_classroom)
) -> list[dict[str, Any]]:
    """The classes I teach (an administrator: every active class), with their SIS link."""
    with teacher_errors(), classroom.session() as session:
        if actor.is_admin:
            found = session.scalars(
                select(Class).where(Class.active.is_(True)).order_by(Class.title, Class.id)
            ).all()
        elif actor.person_id is None:
            found = []
        else:
            found = classes_taught_by(session, actor.person_id)
        return [_class_view(session, klass) for klass in found]


@router.get("/classes/{class_id}")
def one_class(
    class_id: ClassId,
    actor: Actor = Depends(current_actor),
    classroom: Classroom = Depends(get_classroom),
) -> dict[str, Any]:
    with teacher_errors(), classroom.session() as session:
        return _class_view(session, class_for_editing(session, actor, class_id))


@router.get("/sis-classes")
async def my_sis_classes(
    teacher: str | None = Query(None, description="Administrators: whose SIS classes."),
    actor: Actor = Depends(current_actor),
    classroom: Classroom = Depends(get_classroom),
) -> list[dict[str, Any]]:
    """My active SIS classes (found in the SIS by my email), to choose from when linking."""
    with teacher_errors():
        email = teacher if actor.is_admin and teacher else None
        if email is None:
            with classroom.session() as session:
                person = session.get(Person, actor.person_id) if actor.person_id else None
                email = person.email if person else None
        if not email:
            raise InvalidInput("Say whose SIS classes to list: ?teacher=EMAIL.")
        async with open_sis_client(classroom) as client:
            choices = await class_link.sis_classes_for_teacher(client, email)
        return [choice.as_json() for choice in choices]


@router.put("/classes/{class_id}/link")
async def link(
    class_id: ClassId,
    body: LinkRequest,
    actor: Actor = Depends(current_actor),
    classroom: Classroom = Depends(get_classroom),
) -> dict[str, Any]:
    """Link the class to one of my SIS classes (the primary teacher, or an administrator)."""
    with teacher_errors():
        with classroom.session() as session:
            # Checked before any SIS call, so another teacher's class is refused at once.
            class_link.require_primary_teacher(session, actor, class_id, "link it to a SIS class")
        async with open_sis_client(classroom) as client:
            facts = await class_link.link_class(
                classroom, client, actor, class_id, body.sis_class_id
            )
    return {
        "class_id": class_id,
        "sis_class_id": facts.sis_class_id,
        "grading_periods": [
            {"title": p.title, "start": p.start_date.isoformat(), "end": p.end_date.isoformat()}
            for p in facts.grading_periods
        ],
        "categories": [title for _, title in facts.categories],
    }


@router.delete("/classes/{class_id}/link")
def unlink(
    class_id: ClassId,
    actor: Actor = Depends(current_actor),
    classroom: Classroom = Depends(get_classroom),
) -> dict[str, Any]:
    """Remove the class's SIS link; marks already exported stay in the SIS."""
    with teacher_errors():
        unlinked = class_link.unlink_class(classroom, actor, class_id)
    return {"class_id": class_id, "unlinked": unlinked}


@router.post("/classes/{class_id}/sis-facts")
async def refresh_sis_facts(
    class_id: ClassId,
    actor: Actor = Depends(current_actor),
    classroom: Classroom = Depends(get_classroom),
) -> dict[str, Any]:
    """Read the linked class's categories and grading periods from the SIS again now (any of
    its teachers)."""
    with teacher_errors():
        async with open_sis_client(classroom) as client:
            facts = await class_link.refresh_class_facts_for_teacher(
                classroom, client, actor, class_id
            )
    return {
        "class_id": class_id,
        "sis_class_id": facts.sis_class_id,
        "grading_periods": [
            {"title": p.title, "start": p.start_date.isoformat(), "end": p.end_date.isoformat()}
            for p in facts.grading_periods
        ],
        "categories": [title for _, title in facts.categories],
    }


@router.get("/classes/{class_id}/export-settings")
def get_export_choices(
    class_id: ClassId,
    actor: Actor = Depends(current_actor),
    classroom: Classroom = Depends(get_classroom),
) -> dict[str, Any]:
    """The class's mark export choices: `missing_as` ('zero' or 'not_submitted') and
    `export_drafts`."""
    with teacher_errors(), classroom.session() as session:
        return export_settings.export_choices(session, actor, class_id).as_json()


@router.patch("/classes/{class_id}/export-settings")
def change_export_choices(
    class_id: ClassId,
    body: ExportChoicesRequest,
    actor: Actor = Depends(current_actor),
    classroom: Classroom = Depends(get_classroom),
) -> dict[str, Any]:
    """Change the class's mark export choices (the primary teacher, or an administrator);
    answers them all as they are now."""
    with teacher_errors(), classroom.transaction() as session:
        return export_settings.change_export_choices(
            session,
            actor,
            class_id,
            missing_as=body.missing_as,
            export_drafts=body.export_drafts,
            extra_credit=body.extra_credit_limit,
        ).as_json()


# ---- coursework and marks ------------------------------------------------------------------


@router.get("/classes/{class_id}/coursework")
def list_coursework(
    class_id: ClassId,
    actor: Actor = Depends(current_actor),
    classroom: Classroom = Depends(get_classroom),
) -> list[dict[str, Any]]:
    with teacher_errors(), classroom.session() as session:
        class_for_editing(session, actor, class_id)
        return [
            _coursework_view(session, work)
            for work in coursework_service.coursework_of_class(session, class_id)
        ]


@router.post("/classes/{class_id}/coursework", status_code=status.HTTP_201_CREATED)
async def add_coursework(
    class_id: ClassId,
    body: CourseworkRequest,
    actor: Actor = Depends(current_actor),
    classroom: Classroom = Depends(get_classroom),
) -> dict[str, Any]:
    """Add coursework (published unless `draft`) to a class I teach."""
    if body.category:
        with teacher_errors(), classroom.session() as session:
            class_for_editing(session, actor, class_id)  # before any SIS call
        # The SIS's categories, read again if they are stale, so that the one named is there.
        await class_link.fresh_facts_before_coursework(classroom, class_id)
    with teacher_errors(), classroom.transaction() as session:
        class_for_editing(session, actor, class_id)
        work = coursework_service.create_coursework(
            session,
            actor,
            class_id,
            title=body.title,
            description=body.description,
            max_points=body.points,
            due_date=_due(session, body.due),
            category_id=_category_id(session, class_id, body.category),
            publish=not body.draft,
        )
        return _coursework_view(session, work)


@router.put("/classes/{class_id}/coursework/{coursework_id}/marks")
def set_mark(
    class_id: ClassId,
    coursework_id: CourseworkId,
    body: MarkRequest,
    actor: Actor = Depends(current_actor),
    classroom: Classroom = Depends(get_classroom),
) -> dict[str, Any]:
    """Set one student's mark: a score, excused or missing (returned unless `draft`)."""
    given = sum((body.score is not None, body.excused, body.missing))
    if given != 1:
        raise _problem(
            422, "invalid", "Give exactly one of score, excused (true) or missing (true)."
        )
    with teacher_errors(), classroom.transaction() as session:
        class_for_editing(session, actor, class_id)
        _coursework_of(session, class_id, coursework_id)
        student = find_student_of_class(session, class_id, body.student)
        values: dict[str, Any] = (
            {"score": body.score}
            if body.score is not None
            else {"excused": True}
            if body.excused
            else {"missing": True}
        )
        # The service clears the other two (a missing mark keeps no earlier score), and a
        # draft takes back a mark that was returned, so that it is not exported.
        mark = mark_service.set_mark(
            session,
            actor,
            coursework_id,
            student.id,
            comment=body.comment,
            draft=body.draft,
            **values,
        )
        if not body.draft:
            mark_service.return_marks(session, actor, coursework_id, [student.id])
        return {
            "coursework_id": coursework_id,
            "student": student.email,
            "score": mark.score,
            "excused": mark.excused,
            "missing": mark.missing,
            "comment": mark.comment,
            "state": str(mark.state),
        }


# ---- exports, jobs and reports -------------------------------------------------------------


@router.post("/classes/{class_id}/exports", status_code=status.HTTP_202_ACCEPTED)
def start_class_export(
    class_id: ClassId,
    background: BackgroundTasks,
    body: ExportRequest | None = None,
    actor: Actor = Depends(current_actor),
    classroom: Classroom = Depends(get_classroom),
) -> dict[str, Any]:
    """Export the class's coursework and marks to the SIS as a job; answers the job id at once.

    Refusals (permission off, not my class, not linked, disconnected) answer now, before any
    job is queued; one export per class runs at a time (409 while one is unfinished).
    """
    dry_run = bool(body and body.dry_run)
    with teacher_errors():
        job = mark_export_job.class_export_job(classroom, actor, class_id, dry_run=dry_run)
        job_id = mark_export_job.queue_export(classroom, actor, job)
    background.add_task(runner.execute_job, classroom, job_id)
    return {"job_id": job_id, "status": "queued", "dry_run": dry_run, "class_id": class_id}


@router.post("/exports", status_code=status.HTTP_202_ACCEPTED)
def start_all_exports(
    background: BackgroundTasks,
    body: ExportRequest | None = None,
    actor: Actor = Depends(current_actor),
    classroom: Classroom = Depends(get_classroom),
) -> dict[str, Any]:
    """Export every linked class I teach (an administrator: every linked class) as one job."""
    dry_run = bool(body and body.dry_run)
    with teacher_errors():
        job = mark_export_job.all_exports_job(classroom, actor, dry_run=dry_run)
        job_id = mark_export_job.queue_export(classroom, actor, job)
    background.add_task(runner.execute_job, classroom, job_id)
    return {"job_id": job_id, "status": "queued", "dry_run": dry_run}


@router.get("/jobs/{job_id}")
def job_status(
    job_id: JobId,
    actor: Actor = Depends(current_actor),
    classroom: Classroom = Depends(get_classroom),
) -> dict[str, Any]:
    """An export job's status, progress and summary (mine, or of a class I teach)."""
    with classroom.session() as session:
        job = session.get(Job, job_id)
        visible = job is not None and (
            actor.is_admin
            or (
                job.kind in EXPORT_KINDS
                and actor.person_id is not None
                and (
                    job.requested_by_id == actor.person_id
                    or (
                        job.class_id is not None and teaches(session, actor.person_id, job.class_id)
                    )
                )
            )
        )
        if job is None or not visible:
            raise _problem(404, "not_found", f"You have no export job with id {job_id}.")
        return _job_view(job)


@router.get("/classes/{class_id}/report")
def latest_report(
    class_id: ClassId,
    actor: Actor = Depends(current_actor),
    classroom: Classroom = Depends(get_classroom),
) -> dict[str, Any]:
    """Troubleshoot mark export: the class's last export, per coursework and per student."""
    with teacher_errors(), classroom.session() as session:
        class_for_editing(session, actor, class_id)
        rows = report_history(session, class_id, limit=1)
        if not rows:
            raise _problem(
                404, "no_report", "This class has not been exported yet; start an export first."
            )
        return stored_report_json(rows[0])


@router.get("/classes/{class_id}/reports")
def report_list(
    class_id: ClassId,
    limit: int = Query(20, ge=1, le=200),
    actor: Actor = Depends(current_actor),
    classroom: Classroom = Depends(get_classroom),
) -> list[dict[str, Any]]:
    """The class's export history, newest first (summaries; one report's items by its id)."""
    with teacher_errors(), classroom.session() as session:
        class_for_editing(session, actor, class_id)
        return [
            stored_report_json(row, with_items=False)
            for row in report_history(session, class_id, limit=limit)
        ]


@router.get("/classes/{class_id}/reports/{report_id}")
def one_report(
    class_id: ClassId,
    report_id: ReportId,
    actor: Actor = Depends(current_actor),
    classroom: Classroom = Depends(get_classroom),
) -> dict[str, Any]:
    with teacher_errors(), classroom.session() as session:
        class_for_editing(session, actor, class_id)
        row = session.get(MarkExportReport, report_id)
        if row is None or row.class_id != class_id:
            raise NotFound(f"Class {class_id} has no export report with id {report_id}.")
        return stored_report_json(row)


# ---- my API tokens -------------------------------------------------------------------------


@router.get("/tokens")
def my_tokens(
    actor: Actor = Depends(current_actor), classroom: Classroom = Depends(get_classroom)
) -> list[dict[str, Any]]:
    """My live API tokens (never the tokens themselves), with when each was last used."""
    with classroom.session() as session:
        return [token.as_json() for token in list_api_tokens(session, actor)]


@router.delete("/tokens/{token_id}")
def revoke_my_token(
    token_id: TokenId,
    actor: Actor = Depends(current_actor),
    classroom: Classroom = Depends(get_classroom),
) -> dict[str, Any]:
    """Revoke one of my API tokens (this one too, if that is the one sent)."""
    with teacher_errors(), classroom.transaction() as session:
        return revoke_api_token(session, actor, token_id).as_json()


# ---- Google Classroom: the class's course and its grades -----------------------------------


class GooglePullRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    export: bool = Field(False, description="Then export the class to the SIS if it changed.")
    full: bool = Field(False, description="Look at every courseWork and submission again.")


@router.get("/classes/{class_id}/google")
def class_google_course(
    class_id: ClassId,
    actor: Actor = Depends(current_actor),
    classroom: Classroom = Depends(get_classroom),
) -> dict[str, Any]:
    """The class's Google Classroom course (its link), and its last grade pull."""
    from sislink.sync import google_grades

    with teacher_errors():
        return google_grades.course_view(classroom, actor, class_id)


@router.post("/classes/{class_id}/google")
async def pull_class_grades(
    class_id: ClassId,
    body: GooglePullRequest | None = None,
    actor: Actor = Depends(current_actor),
    classroom: Classroom = Depends(get_classroom),
) -> dict[str, Any]:
    """Pull the class's grades from Google Classroom now (then export them, with `export`);
    answers the pull's report. The permission off answers 403, not connected 409."""
    from sislink.jobs.google_grades import run_grade_pull
    from sislink.sync.google_grades import PullRefused

    chosen = body or GooglePullRequest()
    with teacher_errors():
        with classroom.session() as session:
            class_for_editing(session, actor, class_id)
        try:
            run = await run_grade_pull(
                classroom, actor, class_ids=[class_id], full=chosen.full, export=chosen.export
            )
        except PullRefused as refused:
            code = 403 if refused.problem == "permission_off" else 409
            raise _problem(code, refused.problem, refused.message) from None
    return run.as_json()
