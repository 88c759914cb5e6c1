"""The administrator's Activity page: mark exports across classes (failures first) and the
audit log of who did what."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import case, select
from starlette.responses import Response

from sislink.classroom import Classroom
from sislink.classroom.models import Class, Job, JobStatus, MarkExportReport, Person
from sislink.console.auth import get_classroom
from sislink.console.pages.base import Viewer, admin_viewer, render
from sislink.jobs.mark_export import ALL_EXPORT, CLASS_EXPORT
from sislink.sync import connection as service

router = APIRouter()

# Failed or partly failed exports come first: they are what an administrator acts on.
_FAILURES_FIRST = case(
    (MarkExportReport.outcome == "partial", 0), (MarkExportReport.outcome == "refused", 1), else_=2
)


def recent_exports(classroom: Classroom, *, limit: int = 100) -> list[dict[str, Any]]:
    """The latest mark exports of every class, failures first, then newest first."""
    with classroom.session() as session:
        rows = session.execute(
            select(MarkExportReport, Class.title, Person.email)
            .join(Class, Class.id == MarkExportReport.class_id)
            .outerjoin(Person, Person.id == MarkExportReport.requested_by_id)
            .order_by(
                _FAILURES_FIRST, MarkExportReport.started_at.desc(), MarkExportReport.id.desc()
            )
            .limit(limit)
        ).all()
        return [
            {
                "report_id": report.id,
                "class_id": report.class_id,
                "class": title,
                "by": email or "sislink",
                "started_at": report.started_at,
                "outcome": report.outcome,
                "dry_run": report.dry_run,
                "writes": report.writes,
                "counts": (report.summary or {}).get("counts", {}),
                "refused": (report.summary or {}).get("refused"),
            }
            for report, title, email in rows
        ]


def failed_export_jobs(classroom: Classroom, *, limit: int = 20) -> list[dict[str, Any]]:
    """Export jobs that failed outright (the SIS unreachable, for example): no report exists."""
    with classroom.session() as session:
        rows = session.execute(
            select(Job, Class.title)
            .outerjoin(Class, Class.id == Job.class_id)
            .where(Job.kind.in_((CLASS_EXPORT, ALL_EXPORT)), Job.status == JobStatus.FAILED)
            .order_by(Job.created_at.desc())
            .limit(limit)
        ).all()
        return [
            {
                "job_id": job.id,
                "class_id": job.class_id,
                "class": title or "all classes",
                "at": job.created_at,
                "error": (job.report or {}).get("error", ""),
            }
            for job, title in rows
        ]


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
