"""The administrator's Activity page: exports and imports over the last 30 days as charts, mark
exports across classes (failures first) and the audit trail of who did what, in words (names,
not ids), a page at a time."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from sislink.classroom import Classroom
from sislink.classroom.services import directory
from sislink.classroom.services.time_zone import school_time_zone
from sislink.console.auth import get_classroom
from sislink.console.charts import activity_charts, zone_words
from sislink.console.pages.base import Viewer, admin_viewer, render, row_id
from sislink.jobs.mark_export import failed_export_jobs
from sislink.sync.activity_history import ACTIVITY_DAYS, activity_by_day
from sislink.sync.export_report import recent_exports

router = APIRouter()


@router.get("/admin/activity")
def activity_page(
    request: Request,
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    raw = request.query_params.get("before", "")
    with classroom.session() as session:
        audit, older = directory.audit_in_words(session, who.actor, before=row_id(raw))
        zone = school_time_zone(session).zone
        window = activity_by_day(session, zone=zone)
    return render(
        request,
        "activity.html",
        {
            "window": window,
            "window_days": ACTIVITY_DAYS,
            "charts": activity_charts(window, zone),
            "zone_name": zone_words(zone),
            "exports": recent_exports(classroom),
            "failed_jobs": failed_export_jobs(classroom),
            "audit": audit,
            "older": older,
        },
        who=who,
    )
