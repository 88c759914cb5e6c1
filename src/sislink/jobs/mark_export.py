"""Mark export as a job: checked first (a refusal is an answer, not a failed job), then run by the
job runner (one export per class at a time, progress, a Job row with the report's summary).

The job stops when asked (cancelled, or its connection disconnected): no write is sent after
that, what was sent stays in the ledger, and the job ends cancelled with the report so far.
Every class gets a report kept in its history, also one that could not be exported; the job
fails (after all the classes) when a class could not be exported because of the SIS. A job that
finished but left something out ends needs_attention, saying what: items the SIS refused (a
partial export), items skipped for a reason to act on, classes of an --all export refused.

The CLI, the console and the scheduler call these; `execute_job` runs the registered kinds by
id in a worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import exists, select

from sislink.classroom import Actor, Classroom
from sislink.classroom.models import Class, Job, JobStatus, MarkExportReport, Person
from sislink.classroom.services import connections
from sislink.classroom.services.jobs import lock_key_for
from sislink.jobs.observed import count_export_skips
from sislink.jobs.runner import (
    JobCancelled,
    JobContext,
    JobOutcome,
    attention,
    queue,
    register_job_kind,
    run_job,
)
from sislink.sync import preflight
from sislink.sync.errors import SyncError
from sislink.sync.export_report import ExportOutcome, ExportReport, Outcome, job_reports
from sislink.sync.mark_export import export_all_classes, export_one_class
from sislink.sync.sis_client import open_sis_client

CLASS_EXPORT = "mark_export"
ALL_EXPORT = "mark_export_all"
# How many failed classes a failed job's message names (the rest are counted).
NAMED_FAILURES = 3
REFUSED_CLASSES = "refused_classes"
"""An export of every class on the workers lists in its report the classes it could not even
queue a job for (jobs/fan_out.py), in words."""


class ExportNotDone(SyncError):
    """An export job could not export a class (refused or failed): the job fails with this.

    The class's report, saying why, is kept in its history all the same."""


@dataclass(frozen=True)
class ExportRun:
    """How an export job ended, and the export reports it produced (`stored`: as kept in the
    classes' histories, when a Celery worker ran the job and this process has only those)."""

    job: JobOutcome
    reports: list[ExportReport]
    stored: list[dict[str, Any]] = field(default_factory=list)

    @property
    def writes(self) -> int:
        if not self.reports:
            return sum(int(s.get("writes", 0)) for s in self.stored)
        return sum(r.writes for r in self.reports)

    @property
    def stopped(self) -> bool:
        """True when the job was stopped (cancelled, or the SIS disconnected) part way."""
        if not self.reports:
            return any(s.get("outcome") == ExportOutcome.STOPPED.value for s in self.stored)
        return any(r.outcome is ExportOutcome.STOPPED for r in self.reports)

    @property
    def refused_classes(self) -> list[str]:
        """Classes an export of every class on the workers did not export at all (busy with
        another export, refused before their job was made): no report of theirs is kept."""
        return [str(said) for said in (self.job.report or {}).get(REFUSED_CLASSES) or []]

    def class_reports(self) -> list[dict[str, Any]]:
        """Each class's report as JSON with its items: the reports of this process's run, or
        those the workers kept in the classes' histories."""
        if self.reports:
            return [report.as_json() for report in self.reports]
        return list(self.stored)

    def as_json(self) -> dict[str, Any]:
        items = [item for report in self.reports for item in report.json_items()]
        classes = [r.summary() for r in self.reports]
        if not self.reports:
            items = [item for s in self.stored for item in s.get("items", [])]
            hidden = ("items", "report_id", "job_id")
            classes = [{k: v for k, v in s.items() if k not in hidden} for s in self.stored]
        return {
            "job_id": self.job.job_id,
            "status": str(self.job.status),
            "error": self.job.error,
            "stopped": self.stopped,
            "writes": self.writes,
            "classes": classes,
            "items": items,
        }


def _stored_reports(
    classroom: Classroom, run: JobOutcome, reports: list[ExportReport]
) -> ExportRun:
    """The run, with the job's reports as kept when another process (a worker) ran it."""
    if reports:
        return ExportRun(run, reports)
    with classroom.session() as session:
        # An export of every class on the workers keeps its reports under its classes' jobs.
        return ExportRun(run, reports, job_reports(session, run.job_id))


def _actor_of(classroom: Classroom, params: Mapping[str, Any]) -> Actor:
    """The person who asked (their rights apply again when a worker runs the job)."""
    person_id = params.get("person_id")
    if person_id is None:
        return Actor.system()
    with classroom.session() as session:
        person = session.get(Person, int(person_id))
        return Actor.of(person) if person is not None else Actor.system()


def sis_trouble(status: int | None, attempt: int) -> str | None:
    """What an export's progress says after an attempt the SIS failed (no answer, 429, 5xx),
    while the client waits and tries again; None for an answer that is not trouble."""
    if status is not None and status < 500 and status != 429:
        return None
    if status is None:
        said = "did not answer"
    elif status == 429:
        said = "asked sislink to slow down (429)"
    else:
        said = f"answered with an error ({status})"
    return (
        f"The SIS {said}; sislink waits and tries again (attempt {attempt + 2}). Nothing is "
        "lost: whatever is not sent now is sent by the next export."
    )


class SisTroubleWatch:
    """An export job's progress, which also says so while the SIS is failing and the export
    retries (a call observer of the OneRoster client: `saw`)."""

    def __init__(self, context: JobContext, unit: str) -> None:
        self.context = context
        self.unit = unit
        self.done = 0
        self.total: int | None = None
        self.troubled = False

    def _so_far(self) -> str:
        return f"{self.done} of {self.total} {self.unit}" if self.total else ""

    def progress(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        # The first progress after trouble is written at once: the trouble is over.
        self.context.progress(done, total, self._so_far(), force=self.troubled)
        self.troubled = False

    def saw(self, call: Any) -> None:
        """Told of every attempt (a oneroster CallAttempt: status, attempt)."""
        words = sis_trouble(call.status, call.attempt)
        if words is None:
            return
        self.troubled = True
        so_far = self._so_far()
        message = f"{so_far}. {words}" if so_far else words
        self.context.progress(self.done, self.total, message, force=True)


async def export_class_work(
    context: JobContext, reports: list[ExportReport] | None = None
) -> dict[str, Any]:
    """The job's work: export one class (params: class_id, dry_run, person_id)."""
    actor = _actor_of(context.classroom, context.params)
    class_id = int(context.params["class_id"])

    watch = SisTroubleWatch(context, "writes")

    async with open_sis_client(context.classroom) as client:
        client.call_observers.append(watch.saw)
        report = await export_one_class(
            context.classroom,
            client,
            actor,
            class_id,
            dry_run=bool(context.params.get("dry_run")),
            progress=watch.progress,
            should_stop=context.cancelled,
            job_id=context.job_id,
        )
    if reports is not None:
        reports.append(report)
    count_export_skips(context.kind, [report])
    result = {**report.summary(), "report_id": report.report_id, **_attention_of([report])}
    if report.stopped is not None:
        raise JobCancelled(result)
    not_done = report.refused or report.failed
    if not_done is not None:
        raise ExportNotDone(not_done)
    return result


async def export_all_work(
    context: JobContext, reports: list[ExportReport] | None = None
) -> dict[str, Any]:
    """The job's work: export every linked class the person may export."""
    actor = _actor_of(context.classroom, context.params)

    watch = SisTroubleWatch(context, "classes")

    async with open_sis_client(context.classroom) as client:
        client.call_observers.append(watch.saw)
        done = await export_all_classes(
            context.classroom,
            client,
            actor,
            dry_run=bool(context.params.get("dry_run")),
            progress=watch.progress,
            should_stop=context.cancelled,
            job_id=context.job_id,
        )
    if reports is not None:
        reports.extend(done)
    count_export_skips(context.kind, done)
    result = {
        "classes": [r.summary() for r in done],
        "writes": sum(r.writes for r in done),
        **_attention_of(done, name_classes=True),
    }
    if any(r.stopped is not None for r in done):
        raise JobCancelled(result)
    failed = [r for r in done if r.failed is not None]
    if failed:
        raise ExportNotDone(_failed_classes(failed, len(done)))
    return result


def _attention_of(reports: list[ExportReport], *, name_classes: bool = False) -> dict[str, Any]:
    """The job report's `attention` entry (the runner then ends the job needs_attention): what
    was not exported and someone must know of: for an export of several classes, every class
    refused (busy with another export, no permission...), named with why; items the SIS refused
    (a partial export: the next export finishes them), each with the SIS's reason; and items
    skipped for a reason someone must act on. Such a job never ends `succeeded`."""
    count = 0
    failed_reasons: list[str] = []
    skipped_reasons: list[str] = []
    refused_reasons: list[str] = []
    for report in reports:
        prefix = f"{report.class_title}: " if name_classes else ""
        if name_classes and report.refused is not None:
            count += 1
            refused_reasons.append(f"{report.class_title!r} was not exported: {report.refused}")
        failed = [item for item in report.items if item.outcome is Outcome.FAILED]
        if failed:
            count += len(failed)
            for item in failed:
                said = f"{prefix}not accepted by the SIS: {item.in_words()}"
                if said not in failed_reasons:
                    failed_reasons.append(said)
        entry = report.attention()
        if entry is None:
            continue
        count += int(entry["count"])
        skipped_reasons.extend(prefix + reason for reason in entry["reasons"])
    # Refused classes first (a whole class is the most to act on), then refused items.
    return attention(count, refused_reasons + failed_reasons + skipped_reasons)


def _failed_classes(failed: list[ExportReport], total: int) -> str:
    """The failed job's message: how many classes failed, the first few named with why."""
    named = "; ".join(f"{r.class_title!r}: {r.failed}" for r in failed[:NAMED_FAILURES])
    more = len(failed) - NAMED_FAILURES
    rest = f"; and {more} more (see each class's export report)" if more > 0 else ""
    return (
        f"{len(failed)} of {total} classes could not be exported (the others were): {named}{rest}"
    )


register_job_kind(CLASS_EXPORT, export_class_work)
register_job_kind(ALL_EXPORT, export_all_work)


@dataclass(frozen=True)
class ExportJob:
    """What identifies an export job: its kind, lock and parameters (the runner's arguments)."""

    kind: str
    lock_key: str
    connection_id: int | None
    class_id: int | None
    params: dict[str, Any]

    def arguments(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "lock_key": self.lock_key,
            "connection_id": self.connection_id,
            "class_id": self.class_id,
            "params": self.params,
        }


def class_export_job(
    classroom: Classroom, actor: Actor, class_id: int, *, dry_run: bool = False
) -> ExportJob:
    """The job exporting one class. Raises preflight.ExportRefused when the actor may not
    (permission off, disconnected, not their class, not linked): a refusal is an answer."""
    with classroom.session() as session:
        preflight.check_export_allowed(session, actor, class_id)
        current = connections.current_connection(session)
        connection_id = current.id if current is not None else None
    return ExportJob(
        kind=CLASS_EXPORT,
        lock_key=lock_key_for(class_id=class_id),
        connection_id=connection_id,  # so that a disconnect stops it
        class_id=class_id,
        params={"class_id": class_id, "dry_run": dry_run, "person_id": actor.person_id},
    )


def all_exports_job(classroom: Classroom, actor: Actor, *, dry_run: bool = False) -> ExportJob:
    """The job exporting every linked class the actor may export (one per connection)."""
    with classroom.session() as session:
        connection_id = connections.require_export_allowed(session, actor).id
    return ExportJob(
        kind=ALL_EXPORT,
        lock_key=f"mark_export:{lock_key_for(connection_id=connection_id)}",
        connection_id=connection_id,
        class_id=None,
        params={"dry_run": dry_run, "person_id": actor.person_id},
    )


def queue_export(classroom: Classroom, actor: Actor, job: ExportJob) -> int:
    """Queue an export job to run later (`execute_job`), e.g. after a web response."""
    return queue(classroom, actor=actor, **job.arguments())


async def run_class_export(
    classroom: Classroom, actor: Actor, class_id: int, *, dry_run: bool = False
) -> ExportRun:
    """Export one class as a job, here and now."""
    job = class_export_job(classroom, actor, class_id, dry_run=dry_run)
    reports: list[ExportReport] = []

    async def work(context: JobContext) -> dict[str, Any]:
        return await export_class_work(context, reports)

    outcome = await run_job(classroom, actor=actor, work=work, **job.arguments())
    return _stored_reports(classroom, outcome, reports)


async def run_all_exports(
    classroom: Classroom, actor: Actor, *, dry_run: bool = False
) -> ExportRun:
    """Export every linked class the actor may export, as one job, here and now."""
    job = all_exports_job(classroom, actor, dry_run=dry_run)
    reports: list[ExportReport] = []

    async def work(context: JobContext) -> dict[str, Any]:
        return await export_all_work(context, reports)

    outcome = await run_job(classroom, actor=actor, work=work, **job.arguments())
    return _stored_reports(classroom, outcome, reports)


def failed_export_jobs(classroom: Classroom, *, limit: int = 20) -> list[dict[str, Any]]:
    """Export jobs that failed with no report kept (the SIS client could not even be opened)."""
    with classroom.session() as session:
        rows = session.execute(
            select(Job, Class.title)
            .outerjoin(Class, Class.id == Job.class_id)
            .where(
                Job.kind.in_((CLASS_EXPORT, ALL_EXPORT)),
                Job.status == JobStatus.FAILED,
                # A job that failed after a class's report was kept is on the list of exports
                # already, with its reason: only jobs with no report at all are listed here.
                ~exists().where(MarkExportReport.job_id == Job.id),
            )
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
