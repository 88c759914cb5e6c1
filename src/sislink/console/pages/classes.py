"""The teacher's pages: My classes (with link state), linking a class to one of my SIS classes,
the class page (roster, coursework), the gradebook grid, Export marks with live progress, and the
per-item report ("Troubleshoot").

Every route checks that the class is the viewer's (administrators may open any class); the work
is done by the classroom services and `sislink.sync` (class_link, mark_export_job), as the
command line does it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from markupsafe import Markup, escape
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.responses import JSONResponse, Response

from sislink.classroom import Classroom, ClassroomError, InvalidInput
from sislink.classroom.models import (
    Category,
    Class,
    ClassExportSettings,
    Coursework,
    CourseworkState,
    Enrolment,
    EnrolmentRole,
    GradingPeriod,
    Job,
    Mark,
    MarkExportReport,
    MarkState,
    Person,
)
from sislink.classroom.services import coursework as coursework_service
from sislink.classroom.services import export_settings
from sislink.classroom.services import marks as marks_service
from sislink.classroom.services.access import class_for_primary_teacher, teaches
from sislink.classroom.services.classes import classes_taught_by, members
from sislink.classroom.services.connections import class_link, current_connection, link_states
from sislink.classroom.services.jobs import find_unfinished, lock_key_for
from sislink.classroom.services.time_zone import due_at_noon, school_time_zone
from sislink.console import i18n
from sislink.console.auth import get_classroom
from sislink.console.background import BackgroundWork
from sislink.console.charts import class_history_chart
from sislink.console.i18n import N_, _, ngettext
from sislink.console.pages.base import (
    PageError,
    Viewer,
    as_page_errors,
    checked,
    checked_form,
    field,
    redirect,
    render,
    row_id,
    teacher_viewer,
)
from sislink.console.pages.roster import progress_of
from sislink.jobs import runner
from sislink.jobs.mark_export import CLASS_EXPORT
from sislink.oneroster.consumer import OneRosterError
from sislink.partners import profile as partner_profile
from sislink.sync import class_link as linking
from sislink.sync import preflight
from sislink.sync.activity_history import class_export_history
from sislink.sync.errors import SyncError
from sislink.sync.export_report import report_history, stored_report_json
from sislink.sync.gradebook_export_state import ExportState, ItemExport, gradebook_export_state
from sislink.sync.sis_client import open_sis_client

router = APIRouter(prefix="/classes")

EXCUSED_WORDS = ("ex", "exc", "excused")
MISSING_WORDS = ("m", "missing")


# ---- who may see which class ------------------------------------------------------------------


def own_class(session: Session, who: Viewer, class_id: int) -> Class:
    """The class, if the viewer teaches it (or is an administrator); 404 / 403 otherwise."""
    found = session.get(Class, class_id)
    if found is None:
        raise PageError(
            404,
            _("There is no class {class_id}; it may have been deleted.").format(class_id=class_id),
        )
    if who.is_admin or teaches(session, who.person_id, class_id):
        return found
    raise PageError(
        403,
        _(
            "You do not teach this class, so you cannot open it; ask its teacher or an "
            "administrator to add you as a co-teacher."
        ),
    )


def export_refusal(session: Session, who: Viewer, class_id: int) -> str | None:
    """Why this viewer cannot export this class's marks now, or None when they can."""
    try:
        preflight.check_export_allowed(session, who.actor, class_id)
    except preflight.ExportRefused as refused:
        return refused.message
    return None


def export_permission_off(session: Session, who: Viewer) -> bool:
    connection = current_connection(session)
    return (
        not who.is_admin
        and connection is not None
        and connection.status == "authorised"
        and not connection.teacher_export_enabled
    )


# ---- My classes ---------------------------------------------------------------------------


@router.get("")
def my_classes(
    request: Request,
    who: Viewer = Depends(teacher_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    with classroom.session() as session:
        taught = list(classes_taught_by(session, who.person_id))
        counts = dict(
            session.execute(
                select(Enrolment.class_id, func.count())
                .where(
                    Enrolment.class_id.in_([c.id for c in taught]),
                    Enrolment.role == EnrolmentRole.STUDENT,
                    Enrolment.active.is_(True),
                )
                .group_by(Enrolment.class_id)
            ).all()
        )
        states = link_states(session, taught)
        rows = []
        for klass in taught:
            state = states[klass.id]
            last = report_history(session, klass.id, limit=1)
            rows.append(
                {
                    "id": klass.id,
                    "title": klass.title,
                    "section": klass.section,
                    "students": counts.get(klass.id, 0),
                    "linked_to": state.sis_class_id,
                    "link_advice": state.advice,
                    "primary": klass.primary_teacher_id == who.person_id,
                    "last_export": last[0].outcome if last else None,
                    "last_attention": (last[0].summary or {}).get("attention") if last else None,
                }
            )
        permission_off = export_permission_off(session, who)
    return render(
        request,
        "classes.html",
        {"classes": rows, "permission_off": permission_off},
        who=who,
    )


# ---- the class page -----------------------------------------------------------------------


@router.get("/{class_id}")
def class_page(
    request: Request,
    class_id: int,
    who: Viewer = Depends(teacher_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    with classroom.session() as session:
        klass = own_class(session, who, class_id)
        link = class_link(session, class_id)
        students = [
            {"id": p.id, "name": p.name, "email": p.email}
            for p in members(session, class_id, EnrolmentRole.STUDENT)
        ]
        categories = _categories(session, class_id)
        periods = {p.id: p.title for p in _grading_periods(session, klass)}
        zone = school_time_zone(session).zone  # a due date is shown as the school's day
        works = [
            {
                "id": w.id,
                "title": w.title,
                "points": w.max_points,
                "due": w.due_date.astimezone(zone).date() if w.due_date else None,
                "category": categories.get(w.category_id or 0, ""),
                "grading_period": periods.get(w.grading_period_id or 0, _("by due date")),
                "state": w.state,
                "export_to_sis": w.export_to_sis,
            }
            for w in coursework_service.coursework_of_class(session, class_id)
        ]
        refusal = export_refusal(session, who, class_id)
        permission_off = export_permission_off(session, who)
        reports = [
            {
                "id": r.id,
                "at": r.started_at,
                "outcome": r.outcome,
                "writes": r.writes,
                "attention": (r.summary or {}).get("attention"),
            }
            for r in report_history(session, class_id, limit=5)
        ]
        export_chart = class_history_chart(class_id, class_export_history(session, class_id), zone)
        # The class's lock, whoever holds it: its own export, or the export of every class
        # while it exports this one.
        running = find_unfinished(session, lock_key_for(class_id=class_id))
        choices = export_settings.export_choices(session, who.actor, class_id)
        context = {
            "klass": klass,
            "link": link,
            "students": students,
            "works": works,
            "refusal": refusal,
            "permission_off": permission_off,
            "reports": reports,
            "export_chart": export_chart,
            "running_job": running.id if running is not None else None,
            "running_for_every_class": running is not None and running.class_id != class_id,
            "primary": klass.primary_teacher_id == who.person_id or who.is_admin,
            "choices": choices,
            "google": _google_course(classroom, who, class_id),
        }
        return render(request, "class.html", context, who=who)


def _google_course(classroom: Classroom, who: Viewer, class_id: int) -> dict[str, Any] | None:
    """The class's Google Classroom course and last grade pull (None: not in Classroom)."""
    from sislink.sync.google_grades import course_view

    view = course_view(classroom, who.actor, class_id)
    course = view.get("course")
    if not course:
        return None
    link = course.get("alternate_link")
    if isinstance(link, str) and not _web_address(link):
        # The page links it as Google answered it: anything but https (javascript:, data:)
        # would run in the console's pages when a teacher clicks it.
        view = {**view, "course": {**course, "alternate_link": None}}
    return view


def _web_address(link: str) -> bool:
    parts = urlsplit(link)
    return parts.scheme == "https" and bool(parts.hostname)


@router.post("/{class_id}/google-pull")
async def pull_google_grades(
    request: Request,
    class_id: int,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(teacher_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    """Pull the class's grades from Google Classroom now; export them too when asked."""
    from sislink.jobs.google_grades import run_grade_pull

    with classroom.session() as session:
        own_class(session, who, class_id)
    try:
        run = await run_grade_pull(
            classroom, who.actor, class_ids=[class_id], export=form.get("export") == "yes"
        )
    except (SyncError, ClassroomError) as exc:
        return redirect(
            request, f"/classes/{class_id}", _("Not pulled: {why}").format(why=exc.message)
        )
    if run.report is None or not run.report.courses:
        return redirect(
            request,
            f"/classes/{class_id}",
            _("Not pulled: {why}").format(why=run.job.error or _("see the job.")),
        )
    course = run.report.courses[0]
    if course.refused or course.failed:
        return redirect(
            request,
            f"/classes/{class_id}",
            _("Not pulled: {why}").format(why=course.refused or course.failed),
        )
    work, marks = course.coursework, course.marks
    said = _(
        "Pulled from Google Classroom: coursework {work_new} new, {work_changed} changed, "
        "{work_deleted} deleted; marks {marks_new} new, {marks_changed} changed."
    ).format(
        work_new=work["created"],
        work_changed=work["updated"],
        work_deleted=work["deleted"],
        marks_new=marks["created"],
        marks_changed=marks["updated"],
    )
    if course.items:
        said += " " + _("{n} item(s) cannot go to the SIS: see the report below.").format(
            n=len(course.items)
        )
    if run.report.exports:
        said += " " + _("Exported: {n} write(s) to the SIS.").format(
            n=sum(e.writes for e in run.report.exports)
        )
    return redirect(request, f"/classes/{class_id}", said)


@router.post("/{class_id}/export-settings")
def change_export_choices(
    request: Request,
    class_id: int,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(teacher_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    """Save the class's mark export choices (its primary teacher, or an administrator)."""
    with as_page_errors(), classroom.transaction() as session:
        own_class(session, who, class_id)
        choices = export_settings.change_export_choices(
            session,
            who.actor,
            class_id,
            missing_as=field(form, "missing_as") or None,
            export_drafts=checked(form, "export_drafts"),
            extra_credit=field(form, "extra_credit_limit") or None,
        )
    return redirect(
        request,
        f"/classes/{class_id}",
        _("Export choices saved. {choices}").format(choices=choices.describe()),
    )


# ---- linking ------------------------------------------------------------------------------


@router.get("/{class_id}/link")
async def link_page(
    request: Request,
    class_id: int,
    who: Viewer = Depends(teacher_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    return await _link_page(request, who, classroom, class_id)


async def _link_page(
    request: Request,
    who: Viewer,
    classroom: Classroom,
    class_id: int,
    *,
    problem: str | None = None,
    status_code: int = 200,
) -> Response:
    with classroom.session() as session:
        klass = own_class(session, who, class_id)
        with as_page_errors():
            # Only the primary teacher links, so the page lists their SIS classes: a
            # co-teacher is refused here, not shown another teacher's SIS classes.
            class_for_primary_teacher(session, who.actor, class_id, "link it to a SIS class")
        link = class_link(session, class_id)
        teacher = session.get(Person, klass.primary_teacher_id or 0)
        email = teacher.email if teacher is not None else None
        refusal = None
        if export_permission_off(session, who):
            refusal = _(
                "Linking classes and exporting marks is switched off for teachers; an "
                "administrator can switch on 'Enable classwork and mark exporting'."
            )
        title = klass.title
    choices: list[linking.SisClassChoice] = []
    if refusal is None and email:
        try:
            async with open_sis_client(classroom) as client:
                choices = await linking.sis_classes_for_teacher(client, email)
        except (SyncError, OneRosterError) as exc:
            problem = problem or str(exc)
    return render(
        request,
        "link.html",
        {
            "class_id": class_id,
            "title": title,
            "link": link,
            "choices": choices,
            "refusal": refusal,
            "problem": problem,
        },
        who=who,
        status_code=status_code,
    )


@router.post("/{class_id}/link")
async def link(
    request: Request,
    class_id: int,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(teacher_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    with classroom.session() as session:
        own_class(session, who, class_id)
    chosen = field(form, "sis_class").strip()
    if not chosen:
        return await _link_page(
            request,
            who,
            classroom,
            class_id,
            problem=_("Choose one of your SIS classes."),
            status_code=400,
        )
    try:
        async with open_sis_client(classroom) as client:
            facts = await linking.link_class(classroom, client, who.actor, class_id, chosen)
    except (SyncError, ClassroomError, OneRosterError) as exc:
        message = exc.message if isinstance(exc, (SyncError, ClassroomError)) else str(exc)
        return await _link_page(request, who, classroom, class_id, problem=message, status_code=409)
    return redirect(
        request,
        f"/classes/{class_id}",
        _(
            "Linked to SIS class {sis_class}: {periods} grading periods and {categories} "
            "categories from the SIS."
        ).format(
            sis_class=facts.sis_class_id,
            periods=len(facts.grading_periods),
            categories=len(facts.categories),
        ),
    )


@router.post("/{class_id}/unlink")
def unlink(
    request: Request,
    class_id: int,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(teacher_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    with classroom.session() as session:
        own_class(session, who, class_id)
    with as_page_errors():
        linking.unlink_class(classroom, who.actor, class_id)
    return redirect(
        request, f"/classes/{class_id}", _("Unlinked. What was exported stays in the SIS.")
    )


@router.post("/{class_id}/sis-facts")
async def refresh_sis_facts(
    request: Request,
    class_id: int,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(teacher_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    """Read the linked class's categories and grading periods from the SIS again now."""
    with classroom.session() as session:
        own_class(session, who, class_id)
    try:
        async with open_sis_client(classroom) as client:
            facts = await linking.refresh_class_facts_for_teacher(
                classroom, client, who.actor, class_id
            )
    except (SyncError, ClassroomError, OneRosterError) as exc:
        message = exc.message if isinstance(exc, (SyncError, ClassroomError)) else str(exc)
        return redirect(
            request, f"/classes/{class_id}", _("Not refreshed: {why}").format(why=message)
        )
    titles = ", ".join(title for _id, title in facts.categories) or _("none")
    return redirect(
        request,
        f"/classes/{class_id}",
        _("Read from the SIS: {periods} grading periods; categories {titles}.").format(
            periods=len(facts.grading_periods), titles=titles
        ),
    )


# ---- coursework ---------------------------------------------------------------------------


def _categories(session: Session, class_id: int) -> dict[int, str]:
    rows = session.scalars(
        select(Category)
        .where(Category.class_id == class_id, Category.active.is_(True))
        .order_by(Category.title)
    )
    return {c.id: c.title for c in rows}


def _grading_periods(session: Session, klass: Class) -> list[GradingPeriod]:
    """The grading periods a teacher may pick: the linked SIS class's, else the class term's."""
    settings = session.scalars(
        select(ClassExportSettings).where(ClassExportSettings.class_id == klass.id)
    ).first()
    sis_ids = [p["sourcedId"] for p in (settings.sis_grading_periods if settings else [])]
    statement = select(GradingPeriod).where(GradingPeriod.active.is_(True))
    if sis_ids:
        statement = statement.where(GradingPeriod.sis_sourced_id.in_(sis_ids))
    elif klass.term_id is not None:
        statement = statement.where(GradingPeriod.term_id == klass.term_id)
    else:
        return []
    return list(session.scalars(statement.order_by(GradingPeriod.start_date)))


class _NotForTheSis(Exception):
    """Raised inside the save's transaction so that nothing is written (the form says why)."""


@dataclass
class CourseworkForm:
    """What the teacher typed, checked field by field (errors next to each field)."""

    title: str = ""
    description: str = ""
    points: str = "100"
    due: str = ""
    category_id: str = ""
    grading_period_id: str = ""
    export_to_sis: bool = True
    publish: bool = True

    @classmethod
    def of(cls, form: FormData) -> CourseworkForm:
        return cls(
            title=field(form, "title"),
            description=field(form, "description"),
            points=field(form, "points"),
            due=field(form, "due"),
            category_id=field(form, "category_id"),
            grading_period_id=field(form, "grading_period_id"),
            export_to_sis=checked(form, "export_to_sis"),
            publish=checked(form, "publish"),
        )

    @classmethod
    def from_coursework(cls, work: Coursework, zone: tzinfo) -> CourseworkForm:
        """The form of a coursework, its due date the school's day (`zone`)."""
        return cls(
            title=work.title,
            description=work.description,
            points="" if work.max_points is None else f"{work.max_points:g}",
            due=work.due_date.astimezone(zone).date().isoformat() if work.due_date else "",
            category_id=str(work.category_id or ""),
            grading_period_id=str(work.grading_period_id or ""),
            export_to_sis=work.export_to_sis,
            publish=work.state == CourseworkState.PUBLISHED,
        )

    def checked_values(self) -> tuple[dict[str, Any], dict[str, str]]:
        errors: dict[str, str] = {}
        values: dict[str, Any] = {
            "title": self.title.strip(),
            "description": self.description,
            "export_to_sis": self.export_to_sis,
        }
        if not values["title"]:
            errors["title"] = _("Give the coursework a title.")
        elif len(values["title"]) > 500:
            errors["title"] = _(
                "A title may be at most 500 characters (this one has {length})."
            ).format(length=len(values["title"]))
        try:
            values["max_points"] = coursework_service.parse_max_points(
                self.points if self.points.strip() else None
            )
        except InvalidInput:
            errors["points"] = _(
                "Points must be a positive number, like 10 or 2.5 (not {typed})."
            ).format(typed=repr(self.points))
        values["due_date"] = None
        if self.due.strip():
            try:
                # A day: made the school's noon (`due_at_noon`) once a session is open.
                values["due_date"] = datetime.fromisoformat(self.due.strip()).date()
            except ValueError:
                errors["due"] = _(
                    "The due date {typed} is not a date; pick one (2026-10-01)."
                ).format(typed=repr(self.due))
        values["category_id"] = row_id(self.category_id)
        values["grading_period_id"] = row_id(self.grading_period_id)
        return values, errors


def _coursework_page(
    request: Request,
    who: Viewer,
    classroom: Classroom,
    class_id: int,
    typed: CourseworkForm,
    *,
    coursework_id: int | None = None,
    errors: dict[str, str] | None = None,
    problem: str | None = None,
    status_code: int = 200,
) -> Response:
    with classroom.session() as session:
        klass = own_class(session, who, class_id)
        periods = _grading_periods(session, klass)
        context = {
            "klass": klass,
            "typed": typed,
            "coursework_id": coursework_id,
            "categories": _categories(session, class_id),
            "periods": [(p.id, p.title) for p in periods],
            # The date picker's bounds: the first grading period's start, the last one's end.
            "due_min": min((p.start_date.isoformat() for p in periods if p.start_date), default=""),
            "due_max": max((p.end_date.isoformat() for p in periods if p.end_date), default=""),
            "errors": errors or {},
            "problem": problem,
            "linked": class_link(session, class_id) is not None,
            "default_category": _default_category(session),
        }
        return render(request, "coursework_form.html", context, who=who, status_code=status_code)


def _due_at_the_schools_noon(session: Session, values: dict[str, Any]) -> None:
    """The form's due day (`checked_values`) as the instant it is kept as."""
    if values["due_date"] is not None:
        values["due_date"] = due_at_noon(session, values["due_date"])


def _default_category(session: Session) -> str | None:
    connection = current_connection(session)
    return partner_profile(connection.partner).default_category if connection else None


def _sis_problems(
    session: Session, class_id: int, typed: CourseworkForm, values: dict[str, Any]
) -> dict[str, str]:
    """What the SIS would refuse in a linked class's coursework that is to be exported: said
    on the form, before saving, rather than by the export after."""
    if not (typed.export_to_sis and typed.publish):
        return {}
    return preflight.coursework_form_problems(
        session,
        class_id,
        max_points=values["max_points"],
        due_date=values["due_date"],
        category_id=values["category_id"],
        grading_period_id=values["grading_period_id"],
    )


@router.get("/{class_id}/coursework/new")
async def new_coursework(
    request: Request,
    class_id: int,
    who: Viewer = Depends(teacher_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    with classroom.session() as session:
        own_class(session, who, class_id)
    # The SIS's categories, read again if they are stale, so that the form offers them.
    unread = await linking.fresh_facts_before_coursework(classroom, class_id)
    return _coursework_page(request, who, classroom, class_id, CourseworkForm(), problem=unread)


@router.post("/{class_id}/coursework")
def create_coursework(
    request: Request,
    class_id: int,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(teacher_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    typed = CourseworkForm.of(form)
    values, errors = typed.checked_values()
    if not errors:
        try:
            with classroom.transaction() as session:
                own_class(session, who, class_id)
                _due_at_the_schools_noon(session, values)
                errors = _sis_problems(session, class_id, typed, values)
                if errors:
                    raise _NotForTheSis
                work = coursework_service.create_coursework(
                    session, who.actor, class_id, publish=typed.publish, **values
                )
                title = work.title
        except _NotForTheSis:
            pass
        except ClassroomError as exc:
            return _coursework_page(
                request, who, classroom, class_id, typed, problem=exc.message, status_code=400
            )
        else:
            return redirect(
                request, f"/classes/{class_id}", _("Coursework added: {title}.").format(title=title)
            )
    return _coursework_page(
        request, who, classroom, class_id, typed, errors=errors, status_code=400
    )


def _own_coursework(session: Session, who: Viewer, class_id: int, coursework_id: int) -> Coursework:
    own_class(session, who, class_id)
    work = session.get(Coursework, coursework_id)
    if work is None or work.class_id != class_id or work.state == CourseworkState.DELETED:
        raise PageError(
            404, _("This class has no coursework {coursework}.").format(coursework=coursework_id)
        )
    return work


@router.get("/{class_id}/coursework/{coursework_id}/edit")
def edit_coursework_page(
    request: Request,
    class_id: int,
    coursework_id: int,
    who: Viewer = Depends(teacher_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    with classroom.session() as session:
        typed = CourseworkForm.from_coursework(
            _own_coursework(session, who, class_id, coursework_id), school_time_zone(session).zone
        )
    return _coursework_page(request, who, classroom, class_id, typed, coursework_id=coursework_id)


@router.post("/{class_id}/coursework/{coursework_id}")
def edit_coursework(
    request: Request,
    class_id: int,
    coursework_id: int,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(teacher_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    typed = CourseworkForm.of(form)
    values, errors = typed.checked_values()
    if not errors:
        try:
            with classroom.transaction() as session:
                work = _own_coursework(session, who, class_id, coursework_id)
                _due_at_the_schools_noon(session, values)
                errors = _sis_problems(session, class_id, typed, values)
                if errors:
                    raise _NotForTheSis
                coursework_service.edit_coursework(session, who.actor, coursework_id, **values)
                if typed.publish and work.state != CourseworkState.PUBLISHED:
                    coursework_service.publish_coursework(session, who.actor, coursework_id)
                elif not typed.publish and work.state == CourseworkState.PUBLISHED:
                    work.state = CourseworkState.DRAFT
                title = work.title
        except ClassroomError as exc:
            return _coursework_page(
                request,
                who,
                classroom,
                class_id,
                typed,
                coursework_id=coursework_id,
                problem=exc.message,
                status_code=400,
            )
        except _NotForTheSis:
            pass
        else:
            return redirect(
                request, f"/classes/{class_id}", _("Coursework saved: {title}.").format(title=title)
            )
    return _coursework_page(
        request,
        who,
        classroom,
        class_id,
        typed,
        coursework_id=coursework_id,
        errors=errors,
        status_code=400,
    )


@router.post("/{class_id}/coursework/{coursework_id}/delete")
def delete_coursework(
    request: Request,
    class_id: int,
    coursework_id: int,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(teacher_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    with as_page_errors(), classroom.transaction() as session:
        work = _own_coursework(session, who, class_id, coursework_id)
        coursework_service.delete_coursework(session, who.actor, coursework_id)
        title = work.title
    return redirect(
        request,
        f"/classes/{class_id}",
        _("Deleted {title}. The next export removes it from the SIS too.").format(title=title),
    )


# ---- the gradebook ------------------------------------------------------------------------


def cell_text(mark: Mark | None) -> str:
    """How a mark is shown and typed in the grid: a number, EX (excused), M (missing) or ''."""
    if mark is None:
        return ""
    if mark.excused:
        return "EX"
    if mark.score is not None:
        return f"{mark.score:g}"
    if mark.missing:
        return "M"
    return ""


def _gradebook(
    session: Session, class_id: int
) -> tuple[list[Person], list[Coursework], dict[tuple[int, int], Mark]]:
    students = list(members(session, class_id, EnrolmentRole.STUDENT))
    works = list(coursework_service.coursework_of_class(session, class_id))
    found: dict[tuple[int, int], Mark] = {}
    if works:
        for mark in session.scalars(
            select(Mark).where(Mark.coursework_id.in_([w.id for w in works]))
        ):
            found[(mark.coursework_id, mark.student_id)] = mark
    return students, works, found


# What a cell's mark is, in words and as a letter (never by its colour alone).
def _mark_words(mark: Mark | None) -> tuple[list[str], str]:
    """(CSS classes, words) of a mark: draft or returned, and excused or missing."""
    if mark is None or (mark.score is None and not mark.excused and not mark.missing):
        return [], ""
    returned = mark.state == MarkState.RETURNED
    classes = ["returned" if returned else "draft"]
    words = _("Returned") if returned else _("Draft, not returned yet")
    if mark.excused:
        classes.append("excused")
        words += ", " + _("excused")
    elif mark.missing and mark.score is None:
        classes.append("missing")
        words += ", " + _("missing")
    return classes, words


# Each export state's symbol in the grid (its words go with it, for hover, focus and screen
# readers). Something left out by the teacher's own choice gets none: a draft says so by its D.
EXPORT_SYMBOLS = {
    ExportState.SENT: "\u2713",
    ExportState.CHANGED: "\u21bb",
    ExportState.SKIPPED: "!",
    ExportState.FAILED: "\u2715",
    ExportState.NOT_SENT: "\u25cb",
}


class _ExportWords:
    """An item's export state in words: shown on hover for what was skipped or refused (title),
    read with the cell (aria-describedby) and written under the grid when the cell has the
    focus or the pointer (gradebook.js). Each moment is written once per page (Babel's
    formatting, per cell, was most of a 35 x 40 page's time)."""

    def __init__(self, last_export_at: datetime | None) -> None:
        self.moments: dict[datetime | None, str] = {}
        self.last_export = self.when(last_export_at)

    def when(self, moment: datetime | None) -> str:
        if moment not in self.moments:
            self.moments[moment] = i18n.when(moment)
        return self.moments[moment]

    def of(self, found: ItemExport, *, mark: bool = True) -> str:
        if found.state is ExportState.SENT:
            return _("Sent to the SIS {when}.").format(when=self.when(found.sent_at))
        if found.state is ExportState.CHANGED:
            # The reason is the export service's sentence (English, as every service says).
            return _("{reason} (Last sent {when}.)").format(
                reason=found.reason, when=self.when(found.sent_at)
            )
        if found.state is ExportState.SKIPPED and found.chosen and mark:
            # A draft mark (its D says so): the export's long sentence once per cell is most
            # of a large page; the legend and the hint say the rest.
            return _("Not exported until returned.")
        if found.state is ExportState.SKIPPED:
            return _("Skipped by the last export ({when}): {reason}").format(
                when=self.last_export, reason=found.reason
            )
        if found.state is ExportState.FAILED:
            return _("The SIS did not take it: {reason}").format(reason=found.reason)
        return found.reason


HOVERED = frozenset({ExportState.CHANGED, ExportState.SKIPPED, ExportState.FAILED})


def _export_symbol(found: ItemExport) -> str:
    if found.chosen or found.state not in EXPORT_SYMBOLS:
        return ""
    return EXPORT_SYMBOLS[found.state]


@dataclass(frozen=True)
class StudentTotal:
    """Points earned out of points possible (see TOTAL_RULE)."""

    earned: float
    possible: float

    @property
    def words(self) -> str:
        """A total as shown: "17.5 / 20 (88%)", or "none yet" (no mark on points yet)."""
        if not self.possible:
            return _("none yet")
        percent = 100 * self.earned / self.possible
        return f"{_points(self.earned)} / {_points(self.possible)} ({percent:.0f}%)"


def _points(value: float) -> str:
    """Points as a teacher writes them: 17.5, 20 (two decimals at most, no exponent)."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


TOTAL_RULE = N_(
    "Total: points earned out of points possible, over the coursework with points that has a "
    "mark (drafts included): a score counts its points, missing (M) counts 0 of the "
    "coursework's points, and excused (EX) and empty cells are left out of both. Saved marks "
    "only: save to see a change in the total."
)


def student_total(works: list[Coursework], marks: list[Mark | None]) -> StudentTotal:
    """A student's total over `works`, whose marks are `marks` in the same order."""
    earned = possible = 0.0
    for work, mark in zip(works, marks, strict=True):
        if mark is None or work.max_points is None or mark.excused:
            continue
        if mark.score is not None:
            earned += mark.score
            possible += work.max_points
        elif mark.missing:
            possible += work.max_points
    return StudentTotal(earned, possible)


def _cell_html(
    *,
    name: str,
    value: str,
    label: str,
    classes: list[str],
    about: str,
    hover: bool,
    symbol: str,
    error: str | None,
) -> str:
    """One cell of the grid, its text escaped: the input (labelled by student and coursework,
    described by its words), its letter and symbol, its words for screen readers, and what
    was wrong with it. Written here rather than in the template: 1,400 cells through Jinja's
    per-value escaping were most of a 35 x 40 page's time."""
    if error:
        classes = [*classes, "invalid"]
    parts = ["<td"]
    if classes:
        parts.append(f' class="{" ".join(classes)}"')
    if hover:
        parts.append(f' title="{escape(about)}"')
    parts.append(f'><input name="{name}" value="{escape(value)}" aria-label="{escape(label)}"')
    if about:
        parts.append(f' aria-describedby="d{name}"')
    if error:
        parts.append(f' aria-invalid="true" title="{escape(error)}"')
    parts.append(">")
    draft = "draft" in classes
    if draft or symbol:
        parts.append(f'<i aria-hidden="true">{DRAFT_LETTER if draft else ""}{symbol}</i>')
    if about:
        parts.append(f'<span class="gb-vh" id="d{name}">{escape(about)}</span>')
    if error:
        shown = error.split(": ", 1)[1] if ": " in error else error
        parts.append(f'<span class="field-error">{escape(shown)}</span>')
    parts.append("</td>")
    return "".join(parts)


DRAFT_LETTER = '<b class="d">D</b>'


def _gradebook_page(
    request: Request,
    who: Viewer,
    classroom: Classroom,
    class_id: int,
    *,
    typed: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    saved: str = "",
    status_code: int = 200,
) -> Response:
    # Before the marks are read: a save of this page does not undo a mark written after it.
    served_at = datetime.now(UTC)
    with classroom.session() as session:
        klass = own_class(session, who, class_id)
        students, works, found = _gradebook(session, class_id)
        exported = gradebook_export_state(session, class_id, works, found.values())
        words = _ExportWords(exported.last_export_at)
        rows = []
        for student in students:
            marks = [found.get((work.id, student.id)) for work in works]
            cells = []
            for work, mark in zip(works, marks, strict=True):
                name = f"m{work.id}_{student.id}"
                classes, about = _mark_words(mark)
                state = exported.of_mark(work.id, student.id)
                shown = state.shown and exported.linked
                if shown:
                    classes.append(f"x-{state.state.value}")
                    said = words.of(state)
                    about = f"{about}. {said}" if about else said
                cells.append(
                    _cell_html(
                        name=name,
                        value=(typed or {}).get(name, cell_text(mark)),
                        label=f"{student.name}, {work.title}",
                        classes=classes,
                        about=about,
                        # On hover: why it was skipped or refused, or that it is to be sent.
                        hover=shown and state.state in HOVERED and not state.chosen,
                        symbol=_export_symbol(state) if shown else "",
                        error=(errors or {}).get(name),
                    )
                )
            rows.append(
                {
                    "name": student.name,
                    "email": student.email,
                    # Safe: _cell_html escapes every text it writes (the rest is its own).
                    "cells": Markup("".join(cells)),  # noqa: S704
                    "total": student_total(works, marks),
                }
            )
        columns = []
        for w in works:
            state = exported.of_coursework(w.id)
            shown = exported.linked and state.shown
            columns.append(
                {
                    "id": w.id,
                    "title": w.title,
                    "points": w.max_points,
                    "drafts": sum(
                        1
                        for s in students
                        if (m := found.get((w.id, s.id))) is not None and m.state == MarkState.DRAFT
                    ),
                    "about": words.of(state, mark=False) if shown else "",
                    "symbol": _export_symbol(state) if shown else "",
                }
            )
        title = klass.title
    return render(
        request,
        "gradebook.html",
        {
            "class_id": class_id,
            "title": title,
            "columns": columns,
            "rows": rows,
            "errors": errors or {},
            "saved": saved,
            "linked": exported.linked,
            "last_export": words.last_export,
            "total_rule": _(TOTAL_RULE),
            "served_at": served_at.isoformat(),
            # gradebook.js's sentences: how many cells are not saved, a cell with no mark.
            "grid_words": {
                "one": _("1 cell not saved yet."),
                "other": _("{n} cells not saved yet."),
                "no_mark": _("no mark yet."),
            },
        },
        who=who,
        status_code=status_code,
    )


@router.get("/{class_id}/gradebook")
def gradebook(
    request: Request,
    class_id: int,
    who: Viewer = Depends(teacher_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    return _gradebook_page(request, who, classroom, class_id)


def _cell_change(text: str) -> dict[str, Any]:
    """What a typed cell asks for (InvalidInput, in words, for what is not a mark)."""
    cleaned = text.strip().lower()
    if not cleaned:
        return {"score": None, "excused": False, "missing": False}
    if cleaned in EXCUSED_WORDS:
        return {"score": None, "excused": True, "missing": False}
    if cleaned in MISSING_WORDS:
        return {"score": None, "excused": False, "missing": True}
    try:
        score = marks_service.parse_score(text)
    except InvalidInput as exc:
        raise InvalidInput(
            exc.message.rstrip(".") + _("; type a number, EX (excused) or M (missing).")
        ) from None
    return {"score": score, "excused": False, "missing": False}


# A gradebook posts one field per cell: a class of 35 x 40 posts 1,400, past Starlette's
# default of 1,000 fields a form (refused whole, with a 400 in JSON). Room for 100 x 199.
GRADEBOOK_MAX_FIELDS = 20_000
# The most a gradebook form may weigh. Starlette reads up to 1 MB a field, so 20,000 fields could
# be 20 GB held before anything is checked; 100 x 199 cells of "m12345_123456=100.25&" are 420 kB.
GRADEBOOK_MAX_BYTES = 1024 * 1024


async def gradebook_form(
    request: Request,
    who: Viewer = Depends(teacher_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> FormData:
    """The gradebook's form, read with room for every cell once a teacher is known to ask
    and the form's stated length is at most GRADEBOOK_MAX_BYTES (the server reads no more than
    the stated length); then checked as every form is (`checked_form` reads the same form:
    Starlette keeps it once read)."""
    length = request.headers.get("content-length", "")
    if not length.isdigit() or int(length) > GRADEBOOK_MAX_BYTES:
        raise PageError(
            413,
            _(
                "This form is too large to be a gradebook (or does not say its length); "
                "nothing was saved: reload the gradebook and save again."
            ),
        )
    await request.form(max_fields=GRADEBOOK_MAX_FIELDS)
    return await checked_form(request, classroom)


@router.post("/{class_id}/gradebook")
def save_gradebook(
    request: Request,
    class_id: int,
    who: Viewer = Depends(teacher_viewer),
    form: FormData = Depends(gradebook_form),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    """Save the cells that changed; a cell that is not a mark is answered next to it, and
    every other cell is saved all the same."""
    typed: dict[str, str] = {}
    errors: dict[str, str] = {}
    states: dict[str, int] = {"draft": 0, "returned": 0, "cleared": 0}
    served_at = _served_at(field(form, "served_at"))
    with classroom.transaction() as session:
        own_class(session, who, class_id)
        students, works, found = _gradebook(session, class_id)
        gone = _cells_no_longer_in_grid(session, class_id, form, works, students)
        if gone:
            errors["gone"] = ngettext(
                "{n} cell was not saved: its coursework or student is no longer in the class "
                "(deleted, or left the class, since you opened the page).",
                "{n} cells were not saved: their coursework or student is no longer in the "
                "class (deleted, or left the class, since you opened the page).",
                gone,
            ).format(n=gone)
        for work in works:
            for student in students:
                name = f"m{work.id}_{student.id}"
                if name not in form:
                    continue
                text = field(form, name)
                mark = found.get((work.id, student.id))
                if text.strip().lower() == cell_text(mark).lower():
                    continue
                if mark is None and not text.strip():
                    continue
                if served_at is not None and mark is not None and mark.updated_at > served_at:
                    # Written elsewhere (another tab, a co-teacher, a sheet import) after this
                    # page was served: not undone by the page's older text. The cell shows it.
                    errors[name] = _(
                        "{student}, {work}: changed to {now} after you opened the page, so "
                        "yours ({yours}) was not saved; type it again and save to replace it."
                    ).format(
                        student=student.name,
                        work=work.title,
                        now=cell_text(mark) or _("empty"),
                        yours=text.strip() or _("empty"),
                    )
                    continue
                typed[name] = text
                try:
                    change = _cell_change(text)
                    now = marks_service.set_mark(session, who.actor, work.id, student.id, **change)
                except ClassroomError as exc:
                    errors[name] = f"{student.name}, {work.title}: {exc.message}"
                    continue
                del typed[name]
                if not text.strip():
                    states["cleared"] += 1
                elif now.state == MarkState.RETURNED:
                    states["returned"] += 1
                else:
                    states["draft"] += 1
    said = _saved_marks(**states)
    if errors:
        return _gradebook_page(
            request,
            who,
            classroom,
            class_id,
            typed=typed,
            errors=errors,
            saved=said,
            status_code=400,
        )
    return redirect(request, f"/classes/{class_id}/gradebook", said)


_CELL_NAME = re.compile(r"m(\d{1,18})_(\d{1,18})")


def _served_at(text: str) -> datetime | None:
    """When the page being saved was served (its hidden field), if it says."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _cells_no_longer_in_grid(
    session: Session,
    class_id: int,
    form: FormData,
    works: list[Coursework],
    students: list[Person],
) -> int:
    """How many cells of the form were typed (differ from the mark kept) for coursework or a
    student no longer in the grid: coursework deleted, or a student who left, since the page
    was served."""
    in_grid = {(w.id, s.id) for w in works for s in students}
    outside: dict[tuple[int, int], str] = {}
    for name in form:
        cell = _CELL_NAME.fullmatch(name)
        if cell is not None and (key := (int(cell[1]), int(cell[2]))) not in in_grid:
            outside[key] = field(form, name)
    if not outside:
        return 0
    # Only this class's coursework is read (another's, named in a forged form, is not).
    own = {
        w.id
        for w in coursework_service.coursework_of_class(session, class_id, include_deleted=True)
    }
    kept = {
        (m.coursework_id, m.student_id): m
        for m in marks_service.marks_of_coursework(session, {w for w, _s in outside} & own)
    }
    return sum(
        1
        for key, text in outside.items()
        if text.strip().lower() != cell_text(kept.get(key)).lower()
    )


def _saved_marks(draft: int, returned: int, cleared: int) -> str:
    """Exactly what a gradebook save did, and the state the saved marks are in."""

    if not (draft or returned or cleared):
        return _("Nothing was saved: no mark was changed.")
    parts = []
    if draft:
        parts.append(
            ngettext(
                "Saved {n} mark as draft: students do not see it and the export does not send "
                "it until returned.",
                "Saved {n} marks as drafts: students do not see them and the export does not "
                "send them until returned.",
                draft,
            ).format(n=draft)
        )
    if returned:
        parts.append(
            ngettext(
                "Saved {n} mark already returned to students: the next export sends it.",
                "Saved {n} marks already returned to students: the next export sends them.",
                returned,
            ).format(n=returned)
        )
    if cleared:
        parts.append(ngettext("Cleared {n} mark.", "Cleared {n} marks.", cleared).format(n=cleared))
    return " ".join(parts)


@router.post("/{class_id}/return")
def return_marks(
    request: Request,
    class_id: int,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(teacher_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    """Return draft marks: of one coursework (`coursework_id`), or of all."""
    chosen = field(form, "coursework_id")
    returned = 0
    with as_page_errors(), classroom.transaction() as session:
        own_class(session, who, class_id)
        works = coursework_service.coursework_of_class(session, class_id)
        for work in works:
            if chosen and str(work.id) != chosen:
                continue
            returned += marks_service.return_marks(session, who.actor, work.id)
    return redirect(
        request,
        f"/classes/{class_id}/gradebook",
        ngettext(
            "Returned {n} mark to students.", "Returned {n} marks to students.", returned
        ).format(n=returned),
    )


# ---- export and the report ----------------------------------------------------------------


@router.post("/{class_id}/export")
def export_marks(
    request: Request,
    class_id: int,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(teacher_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    """Queue the class's mark export (refused first if not allowed) and run it in the
    background; the next page polls its progress."""
    with classroom.session() as session:
        own_class(session, who, class_id)
        refusal = export_refusal(session, who, class_id)
    if refusal is not None:
        raise PageError(403, refusal)
    try:
        job_id = runner.queue(
            classroom,
            kind=CLASS_EXPORT,
            actor=who.actor,
            lock_key=lock_key_for(class_id=class_id),
            class_id=class_id,
            params={
                "class_id": class_id,
                "dry_run": checked(form, "dry_run"),
                "person_id": who.person_id,
            },
        )
    except ClassroomError as exc:
        raise PageError(409, exc.message) from None
    background: BackgroundWork = request.app.state.background
    background.submit(runner.execute_job(classroom, job_id))
    return redirect(request, f"/classes/{class_id}/export/{job_id}")


def _class_job(session: Session, who: Viewer, class_id: int, job_id: int) -> Job:
    own_class(session, who, class_id)
    job = session.get(Job, job_id)
    if job is None or job.class_id != class_id:
        raise PageError(404, _("This class has no export {job}.").format(job=job_id))
    return job


@router.get("/{class_id}/export/{job_id}")
def export_progress_page(
    request: Request,
    class_id: int,
    job_id: int,
    who: Viewer = Depends(teacher_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    with classroom.session() as session:
        job = _class_job(session, who, class_id, job_id)
        progress = progress_of(job)
        report = session.scalars(
            select(MarkExportReport.id).where(MarkExportReport.job_id == job_id)
        ).first()
        title = session.get(Class, class_id).title  # type: ignore[union-attr]
    if progress["finished"] and report is not None:
        return redirect(request, f"/classes/{class_id}/reports/{report}")
    return render(
        request,
        "export_progress.html",
        {"class_id": class_id, "title": title, "job": progress},
        who=who,
    )


@router.get("/{class_id}/jobs/{job_id}/progress")
def export_progress(
    class_id: int,
    job_id: int,
    who: Viewer = Depends(teacher_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    with classroom.session() as session:
        return JSONResponse(progress_of(_class_job(session, who, class_id, job_id)))


_OUTCOME_ORDER = {"failed": 0, "skipped": 1, "would_delete": 2, "deleted": 3}


@router.get("/{class_id}/reports/{report_id}")
def report_page(
    request: Request,
    class_id: int,
    report_id: int,
    who: Viewer = Depends(teacher_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    """Troubleshoot: every coursework and mark of one export, problems first, with reasons."""
    with classroom.session() as session:
        klass = own_class(session, who, class_id)
        row = session.get(MarkExportReport, report_id)
        if row is None or row.class_id != class_id:
            raise PageError(
                404, _("This class has no export report {report}.").format(report=report_id)
            )
        report = stored_report_json(row)
        title = klass.title
        refusal = export_refusal(session, who, class_id)
    items = sorted(
        report.get("items", []),
        key=lambda item: (_OUTCOME_ORDER.get(item["outcome"], 9), item["kind"] != "lineItem"),
    )
    return render(
        request,
        "report.html",
        {
            "class_id": class_id,
            "title": title,
            "report": report,
            "items": items,
            "refusal": refusal,
        },
        who=who,
    )
