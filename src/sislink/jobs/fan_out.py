"""An export of every class on the workers: one job (and task) per class, a summary at the end.

With SISLINK_BROKER_URL set, the parent job (`mark_export_all`, holding the connection's export
lock) runs in the process that asked for it, not on a worker: it queues one `mark_export` job
per class the person may export (each with its class's lock, as `--class` would), hands them to
the workers, which run them side by side (within the SIS connection's shared limits), and waits
for them; no worker is held waiting, so even one worker process gets through. The parent's
report then gathers theirs: each class's summary, the writes, what needs attention (a class
refused, busy with another export, items skipped or refused by the SIS); it fails when a class
failed, naming the first few. Cancelling the parent cancels the classes not yet done.
"""

from __future__ import annotations

import contextlib
from typing import Any

from sqlalchemy import select

from sislink.classroom import Actor, ClassroomError
from sislink.classroom.models import Class, JobStatus, MarkExportReport
from sislink.classroom.services.jobs import PARENT_JOB
from sislink.jobs import celery_app
from sislink.jobs.mark_export import (
    ALL_EXPORT,
    NAMED_FAILURES,
    REFUSED_CLASSES,
    ExportNotDone,
    class_export_job,
    queue_export,
)
from sislink.jobs.mark_export import _actor_of as actor_of
from sislink.jobs.runner import JobCancelled, JobContext, JobWork, attention, request_cancel
from sislink.sync.errors import SyncError
from sislink.sync.export_report import stored_report_json
from sislink.sync.mark_export import exportable_class_ids

CHILD_JOBS = "child_jobs"
"""The parent's report lists its classes' job ids (their reports are kept under those)."""


async def export_all_on_workers(context: JobContext) -> dict[str, Any]:
    """The parent's work: one export job per class on the workers, then their summary."""
    classroom = context.classroom
    actor = actor_of(classroom, context.params)
    dry_run = bool(context.params.get("dry_run"))
    class_ids = exportable_class_ids(classroom, actor)
    with classroom.session() as session:
        titles = dict(
            session.execute(select(Class.id, Class.title).where(Class.id.in_(class_ids))).all()
        )
    children: list[int] = []
    refused: list[str] = []
    handed = 0
    try:
        for class_id in class_ids:
            try:
                job = class_export_job(classroom, actor, class_id, dry_run=dry_run)
                job.params[PARENT_JOB] = context.job_id
                children.append(queue_export(classroom, actor, job))
            except (SyncError, ClassroomError) as exc:  # refused, or busy with another export
                refused.append(f"{titles.get(class_id, class_id)!r} was not exported: {exc}")
        for child in children:
            await celery_app.hand_over(classroom, child)
            handed += 1
    except BaseException as stopped:
        # None is left queued with no task, holding its class's lock for this process (which
        # lives on: `serve`): those handed are cancelled, the rest failed. The broker's refusal
        # failed its own job already; for anything else (the database away, this task
        # cancelled) the rest are failed saying so.
        said = (
            str(stopped)
            if isinstance(stopped, celery_app.NotHandedOver)
            else "The export of every class that queued it stopped before handing it to the "
            "workers, so nothing of it ran; export again."
        )
        for earlier in children[:handed]:
            with contextlib.suppress(Exception):  # it ended meanwhile, or the database is away
                request_cancel(classroom, earlier, Actor.system())
        for later in children[handed:]:
            with contextlib.suppress(Exception):  # the database away: its process must end it
                celery_app.fail_queued(classroom, later, said)
        raise
    total = len(class_ids)
    stopping = False

    def each_poll(done: int) -> None:
        nonlocal stopping
        context.progress(done + len(refused), total, f"{done + len(refused)} of {total} classes")
        if not stopping and context.cancelled():
            stopping = True
            for child in children:  # the queued end now; the running stop at their next batch
                with contextlib.suppress(ClassroomError):  # it ended meanwhile
                    request_cancel(classroom, child, Actor.system())

    outcomes = await celery_app.wait_for_end(classroom, children, each_poll=each_poll)
    with classroom.session() as session:
        rows = session.scalars(
            select(MarkExportReport)
            .where(MarkExportReport.job_id.in_(children))
            .order_by(MarkExportReport.id)
        ).all()
        stored = [stored_report_json(row, with_items=False) for row in rows]
    count = len(refused)
    reasons = list(refused)
    for outcome in outcomes:
        entry = outcome.report.get("attention") or {}
        count += int(entry.get("count", 0) or 0)
        title = outcome.report.get("class", "")
        reasons.extend(f"{title}: {reason}" for reason in entry.get("reasons", []))
    result: dict[str, Any] = {
        "classes": stored,
        "writes": sum(int(s.get("writes", 0) or 0) for s in stored),
        CHILD_JOBS: children,
        **({REFUSED_CLASSES: refused} if refused else {}),
        **attention(count, reasons),
    }
    if stopping or any(o.status == JobStatus.CANCELLED for o in outcomes):
        raise JobCancelled(result)
    failed = [o for o in outcomes if o.status == JobStatus.FAILED]
    if failed:
        named = "; ".join(str(o.error) for o in failed[:NAMED_FAILURES])
        more = len(failed) - NAMED_FAILURES
        rest = f"; and {more} more (see each class's export report)" if more > 0 else ""
        raise ExportNotDone(
            f"{len(failed)} of {total} classes could not be exported (the others were): "
            f"{named}{rest}"
        )
    return result


FAN_OUT: dict[str, JobWork] = {ALL_EXPORT: export_all_on_workers}
"""Job kinds whose work, with a broker, is to hand its parts to the workers (celery_app)."""
