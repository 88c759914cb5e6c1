"""The administrator's School page: the school's time zone, which every time in the console and
the morning summary's hour are in (`classroom.services.time_zone`, as `sislink time-zone` and
the REST API use)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from sislink.classroom import Classroom
from sislink.classroom.services import time_zone as service
from sislink.console.auth import get_classroom
from sislink.console.i18n import _
from sislink.console.pages.base import (
    Viewer,
    admin_viewer,
    checked_form,
    field,
    redirect,
    render,
)

router = APIRouter(prefix="/admin/school")


def _page(
    request: Request,
    who: Viewer,
    classroom: Classroom,
    *,
    typed: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    with classroom.session() as session:
        current = service.school_time_zone(session)
    default = service.default_time_zone()
    return render(
        request,
        "school.html",
        {
            "current": current,
            "default": default,
            "now": datetime.now(UTC),
            "typed": current.name if typed is None else typed,
            "errors": {"time_zone": error} if error else {},
            "zone_names": service.time_zone_names(),
            # A service's sentence (English, as pages show them): SISLINK_TIME_ZONE names no
            # zone, so the server's is shown and the morning summary is not sent.
            "environment_problem": (
                None if current.source == service.FROM_SETTING else service.environment_problem()
            ),
        },
        who=who,
        status_code=status_code,
    )


@router.get("")
def school_page(
    request: Request,
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    return _page(request, who, classroom)


@router.post("/time-zone")
def set_time_zone(
    request: Request,
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
    form: FormData = Depends(checked_form),
) -> Response:
    typed = field(form, "time_zone").strip()
    back_to_default = field(form, "action") == "default"
    try:
        if typed and not back_to_default:
            service.zone_named(typed)
    except service.NotATimeZone:
        error = _(
            "“{name}” is not a time zone: choose the school's from the list, such as "
            "America/Chicago or America/New_York."
        ).format(name=typed)
        return _page(request, who, classroom, typed=typed, error=error, status_code=400)
    with classroom.transaction() as session:
        chosen = service.set_school_time_zone(
            session, who.actor, None if back_to_default else typed
        )
    if chosen.source == service.FROM_SETTING:
        notice = _("The school's time zone is now {zone}.").format(zone=chosen.name)
    else:
        notice = _("The school's time zone is back to the default, {zone}.").format(
            zone=chosen.name
        )
    return redirect(request, "/admin/school", notice)
