"""The administrator's Activity page: mark exports across classes (failures first) and the
audit log of who did what."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from sislink.classroom import Classroom
from sislink.console.auth import get_classroom
from sislink.console.pages.base import Viewer, admin_viewer, render
from sislink.jobs.mark_export import failed_export_jobs
from sislink.sync import connection as service
from sislink.sync.export_report import recent_exports

router = APIRouter()


@router.get("/admin/activity")
def activity_page(
    request: Request,
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    return render(
        request,
        "activity.html",
        {
            "exports": recent_exports(classroom),
            "failed_jobs": failed_export_jobs(classroom),
            "audit": service.audit_trail(classroom, who.actor, limit=200, sis_only=False),
        },
        who=who,
    )
