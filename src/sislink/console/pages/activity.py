"""The administrator's Activity page: mark exports across classes (failures first) and the
audit trail of who did what, in words (names, not ids), a page at a time."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from sislink.classroom import Classroom
from sislink.classroom.services import directory
from sislink.console.auth import get_classroom
from sislink.console.pages.base import Viewer, admin_viewer, render
from sislink.jobs.mark_export import failed_export_jobs
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
        audit, older = directory.audit_in_words(
            session, who.actor, before=int(raw) if raw.isdigit() and len(raw) < 12 else None
        )
    return render(
        request,
        "activity.html",
        {
            "exports": recent_exports(classroom),
            "failed_jobs": failed_export_jobs(classroom),
            "audit": audit,
            "older": older,
        },
        who=who,
    )
