"""The in-process job runner: record a job, run its work with progress and cancel, end it with a report.

A job is a coroutine function of a `JobContext` that returns its report (a JSON-able dict).
The runner records it in the Job table (queued, running, then succeeded / needs_attention /
failed / cancelled, or on hold when the work raises `JobHeld`), keeps at most one unfinished job per lock key
(`lock_key_for(connection_id=...)` or `(class_id=...)`), stores progress for the console, and
lets anyone cancel it: the work calls `context.check_cancelled()` between batches.

Everything a job needs is in the database (the Job row's kind and params), so a worker in
another process can run the same work by id: `execute_job(classroom, job_id)` looks the kind
up in `JOB_KINDS`. That is how Celery runs the same functions (jobs/celery_app.py): with
SISLINK_BROKER_URL set, `run_job` and `execute_job` hand the job to the workers, whose task
opens the classroom and calls `execute_job_here`. Jobs must be idempotent: a job
interrupted by a crash is failed by the next run that needs its lock, and running it again
repeats only what is needed.

Locks belong to living processes (classroom/services/jobs.py): while a job runs, a heartbeat
thread renews its lease every `heartbeat_seconds()`; a process that was killed leaves a lock
that the next run (CLI or server) takes over at once on this machine, or once the lease runs
out from another. A job that finds its lease taken (it was paused past its lease on another
machine, and presumed dead) stops at its next cancel check, as if cancelled.

    outcome = await run_job(
        classroom, kind="mark_export", actor=actor, class_id=7,
        lock_key=lock_key_for(class_id=7), work=export_work,
    )
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from sislink.classroom import Actor, Classroom, ClassroomError, Conflict
from sislink.classroom.models import Job, JobStatus
from sislink.classroom.services import jobs as job_service
from sislink.classroom.services.access import require_admin
from sislink.operations import metrics
from sislink.operations.logs import log_context
from sislink.operations.summary import alert_hold_if_configured

logger = logging.getLogger("sislink.jobs")

# Progress is written at most this often (seconds), so a fast loop does not hammer the database.
PROGRESS_INTERVAL_S = 0.5
# The cancel flag is re-read from the database at most this often (seconds).
CANCEL_POLL_S = 1.0


class JobHeld(Exception):
    """Raised by a job's work to put the job on hold for an administrator, with its report."""

    def __init__(self, reason: str, report: Mapping[str, Any]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.report = dict(report)


class JobCancelled(Exception):
    """Raised by `JobContext.check_cancelled` when someone asked the job to stop."""

    def __init__(self, report: Mapping[str, Any] | None = None) -> None:
        super().__init__("the job was cancelled")
        self.report = dict(report or {})


@dataclass
class JobContext:
    """What a running job's work may use: its ids, progress reporting, and the cancel flag."""

    classroom: Classroom
    job_id: int
    kind: str
    params: dict[str, Any]
    actor: Actor
    _last_progress: float = field(default=0.0, repr=False)
    _last_cancel_poll: float = field(default=0.0, repr=False)
    _cancelled: bool = field(default=False, repr=False)
    # Set by the heartbeat when another process took the job over: stop as if cancelled.
    lease_lost: threading.Event = field(default_factory=threading.Event, repr=False)

    def progress(
        self, done: int, total: int | None = None, message: str = "", *, force: bool = False
    ) -> None:
        """Record how far the job is (throttled; `force` writes now)."""
        now = time.monotonic()
        if not force and now - self._last_progress < PROGRESS_INTERVAL_S:
            return
        self._last_progress = now
        with self.classroom.transaction() as session:
            job_service.update_progress(session, self.job_id, done, total=total, message=message)

    def cancelled(self) -> bool:
        """True once someone asked this job to stop (read from the database, throttled), or
        its lease was taken over."""
        if self._cancelled or self.lease_lost.is_set():
            return True
        now = time.monotonic()
        if now - self._last_cancel_poll >= CANCEL_POLL_S:
            self._last_cancel_poll = now
            with self.classroom.session() as session:
                flag = session.scalar(select(Job.cancel_requested).where(Job.id == self.job_id))
            self._cancelled = self._cancelled or bool(flag)
        return self._cancelled

    def check_cancelled(self, report: Mapping[str, Any] | None = None) -> None:
        """Raise JobCancelled (with the report so far) if someone asked this job to stop."""
        if self.cancelled():
            raise JobCancelled(report)

    def renew_lease(self, session: Session) -> None:
        """Renew this job's lease inside the work's own write transaction, just before it
        commits (a roster import holds SQLite's only write lock for its whole write phase, so
        the heartbeat cannot write meanwhile). Raises LeaseLost, so that nothing is committed,
        when another process took the job over."""
        if not job_service.renew_lease(session, self.job_id, job_service.this_process()):
            self.lease_lost.set()
            raise LeaseLost(self.job_id)


class LeaseLost(ClassroomError):
    """The job was taken over by another process (its holder looked gone): its work must not
    commit."""

    def __init__(self, job_id: int) -> None:
        super().__init__(
            f"Job {job_id} was taken over by another process while it ran (its heartbeat was "
            "late past its lease), so nothing of it was saved; run it again."
        )


ATTENTION_KEY = "attention"
"""A job's report may carry `{"attention": {"count": N, "reasons": ["...", ...]}}`: the work
finished but N things in it were not done (skipped items, rejected records). The runner then
ends the job `needs_attention` instead of `succeeded`; the reasons are the first few, in words."""


def attention(count: int, reasons: list[str], *, keep: int = 5) -> dict[str, Any]:
    """The report entry that makes a finished job `needs_attention` (empty when count is 0)."""
    if count <= 0:
        return {}
    return {ATTENTION_KEY: {"count": count, "reasons": reasons[:keep]}}


def needs_attention(report: Mapping[str, Any]) -> bool:
    """True when a finished job's report says something in it was not done."""
    entry = report.get(ATTENTION_KEY)
    return isinstance(entry, Mapping) and int(entry.get("count", 0) or 0) > 0


JobWork = Callable[[JobContext], Awaitable[Mapping[str, Any]]]
"""A job's work: given its context, do it and return the report."""

JobKind = Callable[[JobContext], Awaitable[Mapping[str, Any]]]
JOB_KINDS: dict[str, JobKind] = {}
"""Registered job kinds, by name: the work `execute_job` runs for a Job row of that kind."""


def register_job_kind(kind: str, work: JobKind) -> None:
    """Make `execute_job` (and so the scheduler and workers) able to run jobs of this kind."""
    JOB_KINDS[kind] = work


@dataclass(frozen=True)
class JobOutcome:
    """How a job ended: its id, status (succeeded/failed/cancelled/on_hold) and report."""

    job_id: int
    status: JobStatus
    report: dict[str, Any]
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        """Finished its work (perhaps with items that need attention)."""
        return self.status in (JobStatus.SUCCEEDED, JobStatus.NEEDS_ATTENTION)

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "status": str(self.status),
            "error": self.error,
            "report": self.report,
        }


def queue(
    classroom: Classroom,
    *,
    kind: str,
    actor: Actor,
    lock_key: str | None = None,
    connection_id: int | None = None,
    class_id: int | None = None,
    params: Mapping[str, Any] | None = None,
) -> int:
    """Record a queued job and return its id. Conflict if another unfinished job holds the lock."""
    with classroom.transaction() as session:
        job = job_service.queue_job(
            session,
            actor,
            kind,
            connection_id=connection_id,
            class_id=class_id,
            lock_key=lock_key,
        )
        job.params = dict(params or {})
        session.flush()
        return job.id


async def execute(
    classroom: Classroom, job_id: int, work: JobWork, *, actor: Actor | None = None
) -> JobOutcome:
    """Run a queued job's work now, in this process, and record how it ended."""
    try:
        context, ids = _start(classroom, job_id, actor)
    except Exception as caught:
        _fail_unstarted(classroom, job_id, caught)
        raise
    heartbeat = Heartbeat(classroom, job_id, context.lease_lost)
    heartbeat.start()
    # Every line the work logs (its tasks and threads too) carries the job's ids.
    with log_context(job_id=job_id, job_kind=context.kind, **ids):
        logger.info("job %s (%s) started", job_id, context.kind)
        metrics.job_started(context.kind)
        began = time.monotonic()
        try:
            outcome = await _run_work(classroom, context, work, heartbeat)
        finally:
            heartbeat.stop()
        if outcome.status in job_service.LEASED:  # taken over: the process running it ends it
            return outcome
        logger.info("job %s (%s) ended %s", job_id, context.kind, outcome.status)
        metrics.job_ended(
            context.kind, str(outcome.status), time.monotonic() - began, outcome.report
        )
        if outcome.status is JobStatus.ON_HOLD:
            await _tell_of_hold(classroom, job_id)
        return outcome


async def _tell_of_hold(classroom: Classroom, job_id: int) -> None:
    """E-mail the administrators at once that the job waits for them (any kind: a roster
    import, a Google sync), when SMTP is set (operations/summary.py). On a thread (SMTP
    blocks); a failure to send is logged, never the job's."""
    try:
        await asyncio.to_thread(alert_hold_if_configured, classroom, job_id)
    except Exception:
        logger.warning("job %s: the hold alert was not sent", job_id, exc_info=True)


def _start(
    classroom: Classroom, job_id: int, actor: Actor | None
) -> tuple[JobContext, dict[str, int | None]]:
    with classroom.transaction() as session:
        # The row locked first (PostgreSQL): of two deliveries of one Celery task, one starts
        # the job and the other finds it running, never both.
        session.execute(select(Job.id).where(Job.id == job_id).with_for_update())
        job = job_service.start_job(session, job_id)
        context = JobContext(
            classroom,
            job_id,
            job.kind,
            dict(job.params or {}),
            # A queued job runs with sislink's own rights: the person's permission was checked
            # when they asked for it.
            actor or Actor.system(),
        )
        return context, {"connection_id": job.connection_id, "class_id": job.class_id}


def _fail_unstarted(classroom: Classroom, job_id: int, caught: Exception) -> None:
    """A queued job that could not be started (its transaction failed: the database refused or
    was away) is failed, so that its lock does not stay with a living process that will never
    run it. A job that is no longer queued (it ended, or another runner started it) is left."""
    message = f"It could not be started: {_plain(_sole_error(caught))}. Run it again."
    try:
        with classroom.transaction() as session:
            job = job_service.get_job(session, job_id)
            if job.status == JobStatus.QUEUED:
                job_service.finish_job(session, job_id, JobStatus.FAILED, {"error": message})
    except Exception:  # the database is still away: the job keeps its lock until we end
        logger.warning("job %s could not be started nor failed", job_id, exc_info=True)


async def _run_work(
    classroom: Classroom, context: JobContext, work: JobWork, heartbeat: Heartbeat
) -> JobOutcome:
    job_id = context.job_id
    try:
        report = dict(await work(context))
    except JobHeld as held:
        heartbeat.stop()
        with classroom.transaction() as session:
            taken = _taken_over(session, job_id)
            if taken is not None:
                return taken
            job_service.hold_job(session, job_id, held.reason, held.report)
        return JobOutcome(job_id, JobStatus.ON_HOLD, held.report, held.reason)
    except (JobCancelled, asyncio.CancelledError) as stopped:
        # Work still running on a thread (a Google sync, a grade pull) whose task was cancelled
        # (`serve` stopping) stops at its next check, not after the job has ended.
        context._cancelled = True
        report = getattr(stopped, "report", {}) or {}
        heartbeat.stop()
        ended = _finish(classroom, job_id, JobStatus.CANCELLED, {**report, "cancelled": True})
        if isinstance(stopped, asyncio.CancelledError):
            raise
        if ended.status is not JobStatus.CANCELLED:
            return ended
        return JobOutcome(job_id, JobStatus.CANCELLED, report, "cancelled")
    except Exception as caught:
        exc = _sole_error(caught)
        message = _plain(exc)
        # sislink's own errors are sentences that say it all; anything else is a bug to trace.
        if isinstance(exc, SQLAlchemyError):
            # Its traceback would carry the statement's parameters (people's data) into the log.
            logger.warning(
                "job %s (%s) failed: %s [statement: %s]",
                job_id,
                context.kind,
                message,
                getattr(exc, "statement", None),
            )
        else:
            logger.warning(
                "job %s (%s) failed: %s", job_id, context.kind, message, exc_info=not _ours(exc)
            )
        heartbeat.stop()
        return _finish(classroom, job_id, JobStatus.FAILED, {"error": message}, error=message)
    status = JobStatus.NEEDS_ATTENTION if needs_attention(report) else JobStatus.SUCCEEDED
    heartbeat.stop()
    return _finish(classroom, job_id, status, report)


class Heartbeat:
    """Renews a running job's lease from a thread of its own, so that a job whose event loop is
    busy (a long synchronous write) still shows it lives. Sets `lost` when the lease is no
    longer this process's (another process took the job over): the job then stops."""

    def __init__(self, classroom: Classroom, job_id: int, lost: threading.Event) -> None:
        self.classroom = classroom
        self.job_id = job_id
        self.lost = lost
        self.holder = job_service.this_process()
        self.interval_s = job_service.heartbeat_seconds()
        self._stopping = threading.Event()
        self._said_busy = False
        self._thread = threading.Thread(
            target=self._beat, name=f"sislink-job-{job_id}-heartbeat", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop beating (the job is ending: its end is written next). Does not wait for a beat
        under way: it only extends a lease that is still running and this process's."""
        self._stopping.set()

    def _beat(self) -> None:
        while not self._stopping.wait(self.interval_s):
            try:
                with self.classroom.transaction() as session:
                    held = job_service.renew_lease(session, self.job_id, self.holder)
            except OperationalError as busy:
                if _sqlite_busy(busy):
                    # Another write transaction (a roster import's write phase) holds SQLite's
                    # only write lock: expected, said once; the work renews its lease itself.
                    if not self._said_busy:
                        self._said_busy = True
                        logger.warning(
                            "job %s: its heartbeat waits for another write to the database "
                            "(SQLite allows one at a time); it keeps trying",
                            self.job_id,
                        )
                    continue
                logger.warning("job %s: its heartbeat was not written", self.job_id, exc_info=True)
                continue
            except Exception:  # the database is briefly away: the lease has margin, try again
                logger.warning("job %s: its heartbeat was not written", self.job_id, exc_info=True)
                continue
            if not held:
                if not self._stopping.is_set():
                    logger.warning(
                        "job %s: another process took it over (its heartbeat was late); "
                        "stopping it here",
                        self.job_id,
                    )
                    self.lost.set()
                return


async def run_job(
    classroom: Classroom,
    *,
    kind: str,
    actor: Actor,
    work: JobWork | None = None,
    lock_key: str | None = None,
    connection_id: int | None = None,
    class_id: int | None = None,
    params: Mapping[str, Any] | None = None,
) -> JobOutcome:
    """Queue a job and run it now in this process; `work` defaults to the registered kind.

    Raises `Conflict` (with a plain message) when another unfinished job holds `lock_key`;
    every other failure of the work is recorded and returned as a failed outcome.
    """
    chosen = work or _registered(kind)
    job_id = queue(
        classroom,
        kind=kind,
        actor=actor,
        lock_key=lock_key,
        connection_id=connection_id,
        class_id=class_id,
        params=params,
    )
    if broker_url() is not None:
        # On the workers: they run the registered kind by id (`work`'s extras, a given
        # client or a progress bar, stay here unused).
        return await execute_job(classroom, job_id)
    return await execute(classroom, job_id, chosen, actor=actor)


async def execute_job(classroom: Classroom, job_id: int) -> JobOutcome:
    """Run a queued job by id with the work registered for its kind (the console, the
    scheduler). With SISLINK_BROKER_URL set, the job is handed to the Celery workers instead
    (jobs/celery_app.py) and this waits for it to end: the one place the two ways part."""
    if broker_url() is not None:
        from sislink.jobs.celery_app import run_on_workers

        return await run_on_workers(classroom, job_id)
    return await execute_job_here(classroom, job_id)


async def execute_job_here(classroom: Classroom, job_id: int) -> JobOutcome:
    """Run a queued job by id in this process, whatever the broker setting (a worker's task)."""
    with classroom.session() as session:
        job = job_service.get_job(session, job_id)
        kind = job.kind
    try:
        work = _registered(kind)
    except ClassroomError as caught:  # a worker of another version: fail it, not leave it queued
        _fail_unstarted(classroom, job_id, caught)
        raise
    return await execute(classroom, job_id, work)


def request_cancel(classroom: Classroom, job_id: int, actor: Actor) -> JobStatus:
    """Ask a job to stop. A queued job ends at once, and so does one whose process is gone (it
    was killed); a running one stops at its next batch.

    Returns the job's status after the request. Conflict if it has already ended. An
    administrator may cancel any job; anyone else only a job they started themselves.
    """
    with classroom.transaction() as session:
        job = job_service.get_job(session, job_id)
        if actor.person_id is None or job.requested_by_id != actor.person_id:
            require_admin(actor, "cancel a job someone else started")
        if job.status in job_service.FINISHED:
            raise Conflict(
                f"Job {job_id} already ended as {job.status}; there is nothing to cancel."
            )
        job.cancel_requested = True
        report = {**(job.report or {}), "cancelled": True}
        gone = job_service.holder_gone(job, job_service.database_now(session))
        if gone is not None:
            report["error"] = job_service.interrupted_sentence(job, gone)
        if gone is not None or job.status in (JobStatus.QUEUED, JobStatus.ON_HOLD):
            job_service.finish_job(session, job_id, JobStatus.CANCELLED, report)
        return JobStatus(job.status)


def recover_interrupted(classroom: Classroom) -> list[int]:
    """Fail the jobs whose process is gone (killed, or the machine stopped), releasing their
    locks; returns their ids. Jobs of processes still running, here or on another machine
    (a CLI export while `sislink serve` starts), are left alone.

    `sislink serve` calls it when it starts, and the scheduler at every tick; any run that
    needs a lock does the same for that lock's job. The jobs are idempotent, so running them
    again repeats only what is needed.
    """
    # Read first, without writing: on SQLite this does not wait for a long write (a roster
    # import's write phase); a write transaction is opened only when a job is gone.
    with classroom.session() as session:
        gone = job_service.jobs_whose_holder_is_gone(session)
        now = job_service.database_now(session) if gone else None
    gone = [job for job in gone if now is None or not left_to_workers(job, now)]
    if not gone:
        return []
    with classroom.transaction() as session:
        return job_service.end_jobs_whose_holder_is_gone(session, gone)


BROKER_VARIABLE = "SISLINK_BROKER_URL"
ON_WORKERS = "on_workers"
"""Set in a job's params when it was handed to the Celery workers (jobs/celery_app.py)."""
SENT_AT = "sent_at"
"""When the job's task was last put on the queue (the database's time, ISO 8601), in its params:
a job whose task the broker lost is sent again once the grace has passed since then."""
REDELIVERY_GRACE_VARIABLE = "SISLINK_REDELIVERY_GRACE_SECONDS"
DEFAULT_REDELIVERY_GRACE_S = 300.0


def broker_url() -> str | None:
    """The Celery broker (SISLINK_BROKER_URL: redis://... or amqp://...), or None: jobs run in
    the process that asks for them (the embedded default)."""
    url = os.environ.get(BROKER_VARIABLE, "").strip()
    return url or None


def redelivery_grace_s() -> float:
    """SISLINK_REDELIVERY_GRACE_SECONDS; by default 300 s, or on a Redis broker its visibility
    timeout and a lease more (Redis gives a dead worker's task to another only then: a shorter
    grace failed the job first, and the redelivered task found nothing to do)."""
    default = DEFAULT_REDELIVERY_GRACE_S
    if (broker_url() or "").startswith(("redis://", "rediss://")):
        from sislink.jobs.celery_app import DEFAULT_VISIBILITY_S, visibility_s

        try:
            visible = visibility_s()
        except ValueError:  # said where the broker is set up; here the default stands
            visible = DEFAULT_VISIBILITY_S
        default = max(default, visible + job_service.lease_seconds())
    raw = os.environ.get(REDELIVERY_GRACE_VARIABLE, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:  # a typo must not stop recovery: the default, and a word in the log
        logger.warning("%s is %r, not seconds: %g used", REDELIVERY_GRACE_VARIABLE, raw, default)
        return default


def left_to_workers(job: Job, now: datetime) -> bool:
    """True for a job handed to the Celery workers that its broker still holds: queued (a
    worker will start it; cancel ends it; a task the broker lost is sent again), or running on
    a worker that died less than SISLINK_REDELIVERY_GRACE_SECONDS ago (the broker redelivers
    its task, and the worker that gets it takes the job over), counted from its last heartbeat
    or from when its task was last sent again, whichever is later. Such a job is not failed
    as interrupted."""
    if not (job.params or {}).get(ON_WORKERS):
        return False
    if job.status == JobStatus.QUEUED:
        return True
    grace = redelivery_grace_s()
    beat = job.heartbeat_at
    if beat is None:
        return False
    beat = beat.replace(tzinfo=UTC) if beat.tzinfo is None else beat
    sent = last_sent(job)
    return now - max(beat, sent) < timedelta(seconds=grace)


def last_sent(job: Job) -> datetime:
    """When the job's task was last put on the queue (its SENT_AT; before that was recorded,
    when the job was made)."""
    raw = (job.params or {}).get(SENT_AT)
    when: datetime | None = None
    if isinstance(raw, str):
        try:
            when = datetime.fromisoformat(raw)
        except ValueError:
            when = None
    when = when or job.created_at or datetime.fromtimestamp(0, UTC)
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def _finish(
    classroom: Classroom,
    job_id: int,
    status: JobStatus,
    report: Mapping[str, Any],
    *,
    error: str | None = None,
) -> JobOutcome:
    """Record how the job ended, unless another process already ended it (it took the job
    over when this one's heartbeat stopped): then that ending stands and is returned."""
    with classroom.transaction() as session:
        taken = _taken_over(session, job_id)
        if taken is not None:
            return taken
        job_service.finish_job(session, job_id, status, report)
    return JobOutcome(job_id, status, dict(report), error)


def _taken_over(session: Session, job_id: int) -> JobOutcome | None:
    """How the job stands when this process may no longer end it: another process ended it,
    or took it over and runs it (a worker of another machine, when this one was late past its
    lease: the job is theirs to end, and its lock theirs to give back). None: it is ours."""
    job = job_service.get_job(session, job_id)
    if job.status in job_service.LEASED and job.lease_holder != job_service.this_process().token():
        holder = job_service.ProcessIdentity.parse(job.lease_holder)
        said = (
            f"another process ({holder.in_words() if holder else 'unknown'}) took this job over "
            "while it ran here; it ends it"
        )
        logger.warning("job %s: %s", job_id, said)
        return JobOutcome(job_id, JobStatus(job.status), dict(job.report or {}), said)
    if job.status not in job_service.FINISHED:
        return None
    report = dict(job.report or {})
    error = report.get("error")
    logger.warning(
        "job %s was ended elsewhere as %s while it ran here: %s", job_id, job.status, error
    )
    return JobOutcome(job_id, JobStatus(job.status), report, str(error) if error else None)


def _sqlite_busy(exc: OperationalError) -> bool:
    """True for SQLite's "database is locked" (its busy timeout ran out waiting for a writer)."""
    return "database is locked" in str(exc.orig if exc.orig is not None else exc)


def _registered(kind: str) -> JobKind:
    try:
        return JOB_KINDS[kind]
    except KeyError:
        known = ", ".join(sorted(JOB_KINDS)) or "none"
        raise ClassroomError(f"No job kind {kind!r} is registered (known: {known}).") from None


def _sole_error(exc: Exception) -> Exception:
    """The one error inside a task group's ExceptionGroup (work that ran tasks side by side),
    so that its own sentence is what the job says; a group of several stays a group."""
    while isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _ours(exc: BaseException) -> bool:
    return isinstance(exc, ClassroomError) or type(exc).__module__.startswith("sislink")


def _plain(exc: BaseException) -> str:
    if isinstance(exc, SQLAlchemyError):
        return _database_sentence(exc)
    text = str(exc).strip()
    if _ours(exc):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _database_sentence(exc: SQLAlchemyError) -> str:
    """A database error in words, without its SQL or parameters: the job's report is shown to
    administrators, and the statement's parameters are people's data (or worse)."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    first_line = (str(cause).strip().splitlines() or [""])[0]
    if isinstance(exc, DBAPIError) and first_line.startswith("("):
        first_line = ""  # SQLAlchemy's own wrapper text starts with the driver's class name
    said = f" ({type(cause).__name__}: {first_line})" if first_line else ""
    return (
        f"The classroom's database refused this job's work{said}; nothing more was done. "
        "Run it again; if it fails the same way, the operator's log has the details."
    )
