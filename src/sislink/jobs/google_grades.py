"""The grade pull from Google Classroom as a job (kind `google_grade_pull`): checked first (a
refusal is an answer, not a failed job), then run by the job runner with a Job row and the
pull's report. With `export`, the existing mark export (`sync.mark_export.export_all_classes`)
then runs, in the same job, for the classes the pull changed and those with changes not yet
exported (`classes_to_export`): the export's ledger sends only what changed, and a quiet class
is not exported at all, so a pull over quiet courses asks the SIS nothing.

The job ends needs_attention when an item cannot go to the SIS (said in the class's troubleshoot
report), a class could not be pulled, or the export left something out; never "succeeded".
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sislink.classroom import Actor, Classroom
from sislink.classroom.models import Person
from sislink.jobs.runner import (
    JobCancelled,
    JobContext,
    JobOutcome,
    attention,
    register_job_kind,
    run_job,
)
from sislink.sync.google_grades import (
    GooglePullReport,
    check_pull_allowed,
    class_lock,
    classes_to_export,
    pull_grades,
)
from sislink.sync.mark_export import export_all_classes
from sislink.sync.sis_client import open_sis_client

GRADE_PULL = "google_grade_pull"


def _actor_of(classroom: Classroom, params: Mapping[str, Any]) -> Actor:
    """The person who asked (their rights apply again when a worker runs the job)."""
    person_id = params.get("person_id")
    if person_id is None:
        return Actor.system()
    with classroom.session() as session:
        person = session.get(Person, int(person_id))
        return Actor.of(person) if person is not None else Actor.system()


async def grade_pull_work(
    context: JobContext, reports: list[GooglePullReport] | None = None
) -> dict[str, Any]:
    """The job's work (params: class_ids or None for all, full, export, person_id)."""
    params = context.params
    actor = _actor_of(context.classroom, params)
    chosen = params.get("class_ids")
    class_ids = [int(c) for c in chosen] if chosen is not None else None
    context.progress(0, None, "asking Google Classroom")
    report = await asyncio.to_thread(
        pull_grades,
        context.classroom,
        actor,
        class_ids=class_ids,
        full=bool(params.get("full")),
        job_id=context.job_id,
        should_stop=context.cancelled,
    )
    changed = (
        classes_to_export(context.classroom, report)
        if params.get("export") and not report.stopped
        else []
    )
    # Asked to stop (cancelled, or the SIS disconnected) during the pull, before the export or
    # during it: the job ends cancelled, not succeeded with part of its work left out; the
    # next pull takes the classes not reached and exports what is not yet in the SIS.
    stopped = report.stopped or (bool(changed) and context.cancelled())
    if changed and not stopped:
        context.progress(len(report.courses), None, f"exporting {len(changed)} classes")
        async with open_sis_client(context.classroom) as client:
            report.exports = await export_all_classes(
                context.classroom,
                client,
                actor,
                class_ids=changed,
                should_stop=context.cancelled,
                job_id=context.job_id,
            )
        stopped = any(export.stopped is not None for export in report.exports)
    if reports is not None:
        reports.append(report)
    count, reasons = report.attention()
    result = report.to_dict() | attention(count, reasons)
    if stopped:
        raise JobCancelled(result)
    return result


register_job_kind(GRADE_PULL, grade_pull_work)


@dataclass(frozen=True)
class GradePullRun:
    """How a grade pull job ended, and its report (None when the job failed before one)."""

    job: JobOutcome
    report: GooglePullReport | None

    def as_json(self) -> dict[str, Any]:
        # On Celery workers the report is the job's (the work ran elsewhere).
        body = self.report.to_dict() if self.report is not None else dict(self.job.report or {})
        attention = (self.job.report or {}).get("attention") or body.get("attention")
        return {
            **body,
            "job_id": self.job.job_id,
            "status": str(self.job.status),
            "error": self.job.error,
            "attention": attention,
        }


def grade_pull_arguments(
    classroom: Classroom,
    actor: Actor,
    *,
    class_ids: Sequence[int] | None = None,
    full: bool = False,
    export: bool = False,
) -> dict[str, Any]:
    """The runner's arguments for a pull job. Raises PullRefused when nothing may be pulled
    now (not connected to Google Classroom, the permission off)."""
    with classroom.session() as session:
        check_pull_allowed(session)
    single = class_ids is not None and len(class_ids) == 1
    lock = class_lock(class_ids[0]) if single and class_ids else "google_grades:all"
    return {
        "kind": GRADE_PULL,
        "lock_key": lock,
        "class_id": class_ids[0] if single and class_ids else None,
        "params": {
            "class_ids": list(class_ids) if class_ids is not None else None,
            "full": full,
            "export": export,
            "person_id": actor.person_id,
        },
    }


async def run_grade_pull(
    classroom: Classroom,
    actor: Actor,
    *,
    class_ids: Sequence[int] | None = None,
    full: bool = False,
    export: bool = False,
) -> GradePullRun:
    """Pull grades (and export them, with `export`) as a job, here and now."""
    arguments = grade_pull_arguments(
        classroom, actor, class_ids=class_ids, full=full, export=export
    )
    reports: list[GooglePullReport] = []

    async def work(context: JobContext) -> dict[str, Any]:
        return await grade_pull_work(context, reports)

    outcome = await run_job(classroom, actor=actor, work=work, **arguments)
    return GradePullRun(outcome, reports[0] if reports else None)
