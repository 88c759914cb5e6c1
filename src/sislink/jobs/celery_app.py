"""Jobs on Celery workers: with SISLINK_BROKER_URL set, a job is run by `sislink worker`.

The jobs are already plain functions of a job id (jobs/runner.py): what travels is the id, and
the worker that gets it opens the classroom and runs the registered kind. Without the variable
nothing here is used: jobs run in the process that asks (the embedded default).

- Who hands a job over (`run_on_workers`: the CLI, `serve`'s console pages and scheduler) marks
  it as on the workers, sends the task and waits for the job to end, renewing the queued job's
  lease meanwhile; the waiting is only so that it can say how the job ended.
- Tasks are acknowledged late (`acks_late`, `reject_on_worker_lost`, one prefetched at a time):
  a worker killed with SIGKILL leaves its task with the broker, which gives it to another worker
  (RabbitMQ at once; Redis once its visibility timeout, SISLINK_BROKER_VISIBILITY_TIMEOUT, has
  passed). That worker finds the job running for a process that is gone (on this machine: at
  once; elsewhere: once its lease ran out) and takes it over: it runs the work again, which
  repeats only what was not done (the export ledger and derived sourcedIds make a re-sent write
  land on the same record). While the first worker still lives, a second delivery waits. A
  job someone asked to stop whose worker then died is ended as cancelled, not taken over.
- A job already ended (cancelled while queued, failed, on hold) is not run: its task ends.
- A task the broker does not take fails its job at once (NotHandedOver); a worker that cannot
  reach the database when it takes a task tries it again later (it is never dropped).
- A task the broker took and then lost (Redis restarted without its data, or flushed; the
  sender died between recording the job and sending its task) is sent again (`resend_lost`,
  every worker and `serve`'s scheduler look): a job queued past SISLINK_REDELIVERY_GRACE_SECONDS
  since its task was sent while no task waits in the queue, or running for a worker that is
  gone and not taken over within the grace. Sent again at most MAX_RESENDS times; a second
  task of one job is harmless (its start locks its row: one delivery runs it, the other finds
  it running or ended).

The queue is SISLINK_QUEUE ("sislink" by default); two installations sharing a broker give
each their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from celery import Celery  # type: ignore[import-untyped]
from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.exc import InterfaceError, OperationalError

from sislink.classroom import Classroom, ClassroomError, Conflict, NotFound, open_classroom
from sislink.classroom.models import Job, JobLock, JobStatus, utc_now
from sislink.classroom.services import jobs as job_service
from sislink.jobs import runner
from sislink.jobs.runner import ON_WORKERS, SENT_AT, JobOutcome
from sislink.operations.logs import url_in_words
from sislink.settings import Settings

logger = logging.getLogger("sislink.jobs.celery")

QUEUE_VARIABLE = "SISLINK_QUEUE"
DEFAULT_QUEUE = "sislink"
VISIBILITY_VARIABLE = "SISLINK_BROKER_VISIBILITY_TIMEOUT"
DEFAULT_VISIBILITY_S = 3600
TASK_NAME = "sislink.run_job"
# How long a Redis broker has to take a connection and to answer each command (seconds): one
# that stopped answering (paused, its packets dropped) held a task's send, and the scheduler's
# look for lost tasks, for ever (no more scheduled imports until serve restarted).
BROKER_TIMEOUT_S = 30.0
# How often the process that handed a job over reads whether it has ended (seconds).
WAIT_POLL_S = 0.25


def queue_name() -> str:
    return os.environ.get(QUEUE_VARIABLE, "").strip() or DEFAULT_QUEUE


def visibility_s() -> int:
    raw = os.environ.get(VISIBILITY_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_VISIBILITY_S
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(
            f"{VISIBILITY_VARIABLE} is {raw!r}: give the seconds Redis keeps a task a worker "
            f"took before giving it to another (a whole number, default {DEFAULT_VISIBILITY_S})."
        )
    return int(raw)


@cache
def celery_app() -> Celery:
    """The Celery app for SISLINK_BROKER_URL (one per process)."""
    broker = runner.broker_url()
    if broker is None:
        raise RuntimeError(f"{runner.BROKER_VARIABLE} is not set: jobs run in-process.")
    app = Celery("sislink", broker=broker, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_default_queue=queue_name(),
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": visibility_s(),
            # Redis: look for tasks of dead workers past their visibility timeout every 10 s
            # (kombu's default scans only every tenth look, ~100 s: a SIGKILLed worker's
            # import waited that long for its redelivery). RabbitMQ ignores both.
            "unacked_restore_throttle": 1,
            **(
                {
                    "socket_timeout": BROKER_TIMEOUT_S,
                    "socket_connect_timeout": BROKER_TIMEOUT_S,
                }
                if broker.startswith(("redis://", "rediss://"))
                else {}
            ),
        },
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
    )
    app.task(
        name=TASK_NAME,
        bind=True,
        acks_late=True,
        reject_on_worker_lost=True,
        max_retries=None,
    )(_run_job_task)
    return app


def send_job(job_id: int) -> None:
    """Put the job's task on the queue (the job is recorded already)."""
    celery_app().send_task(TASK_NAME, args=[job_id], queue=queue_name())


class NotHandedOver(ClassroomError):
    """The broker did not take a job's task: the job was failed (nothing of it ran)."""


def broker_in_words(url: str | None = None) -> str:
    """The broker's scheme, host and port, never its user or password (for messages)."""
    return url_in_words(url if url is not None else runner.broker_url() or "")


def _hidden(text: str) -> str:
    """`text` without the broker's password (a driver may quote its URL)."""
    password = urlsplit(runner.broker_url() or "").password
    return text.replace(password, "[hidden]") if password else text


def fail_queued(classroom: Classroom, job_id: int, sentence: str) -> None:
    """Fail a job that is still queued (its task never reached the broker): its lock goes."""
    with classroom.transaction() as session:
        job = job_service.get_job(session, job_id)
        if job.status == JobStatus.QUEUED:
            job_service.finish_job(session, job_id, JobStatus.FAILED, {"error": sentence})


async def run_on_workers(classroom: Classroom, job_id: int) -> JobOutcome:
    """Hand a queued job to the workers and wait for it to end; its outcome. A kind that fans
    out (FAN_OUT: an export of every class) runs its parent here instead: it hands one job
    per part to the workers and waits for them (no worker is held waiting)."""
    from sislink.jobs.fan_out import FAN_OUT

    with classroom.session() as session:
        kind = job_service.get_job(session, job_id).kind
    if kind in FAN_OUT:
        return await runner.execute(classroom, job_id, FAN_OUT[kind])
    try:
        await hand_over(classroom, job_id)
    except NotHandedOver:
        if (failed := ended(classroom, job_id)) is None:
            raise
        return failed
    except BaseException:
        # The database away (or this task cancelled) before the task was surely sent: the job
        # must not stay queued for this process (which lives on: `serve`) holding its lock.
        with contextlib.suppress(Exception):  # the database still away: this process's end frees it
            fail_queued(
                classroom,
                job_id,
                f"Job {job_id} could not be handed to the workers (the database or this process "
                "stopped while it was), so nothing of it ran; run it again.",
            )
        raise
    (outcome,) = await wait_for_end(classroom, [job_id])
    return outcome


async def hand_over(classroom: Classroom, job_id: int) -> None:
    """Mark a queued job as the workers' and put its task on the queue. When the broker does
    not take it, the job is failed (else it would stay queued, holding its lock, with no task
    to run it) and NotHandedOver says why."""
    with classroom.transaction() as session:
        job, now = _job_and_database_now(session, job_id)
        job.params = {**(job.params or {}), ON_WORKERS: True, SENT_AT: now.isoformat()}
    try:
        await asyncio.to_thread(send_job, job_id)
    except Exception as caught:
        said = _hidden(str(caught).strip().splitlines()[0] if str(caught).strip() else "")
        sentence = (
            f"Job {job_id} could not be handed to the workers: the broker at "
            f"{broker_in_words()} did not take its task ({type(caught).__name__}"
            f"{': ' + said if said else ''}), so nothing of it ran. Check that the broker is up "
            f"and that {runner.BROKER_VARIABLE} names it, then run it again."
        )
        logger.warning("%s", sentence)
        fail_queued(classroom, job_id, sentence)
        raise NotHandedOver(sentence) from None
    logger.info("job %s handed to the workers (queue %s)", job_id, queue_name())


def _job_and_database_now(session: Any, job_id: int) -> tuple[Job, datetime]:
    """The job and the database's clock (UTC, as `database_now`) in one query: an export of
    every class hands over a job per class, and a clock query of its own for each was one
    round trip in four."""
    if session.get_bind().dialect.name == "postgresql":
        clock: Any = func.clock_timestamp()
    else:
        clock = func.strftime("%Y-%m-%d %H:%M:%f", "now")
    row = session.execute(select(Job, clock).where(Job.id == job_id)).first()
    if row is None:
        raise NotFound(f"There is no job with id {job_id}.")
    job, value = row
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return job, when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def ended(classroom: Classroom, job_id: int) -> JobOutcome | None:
    """The job's outcome once it has ended (or is on hold), else None."""
    with classroom.session() as session:
        job = job_service.get_job(session, job_id)
        status = JobStatus(job.status)
        report = dict(job.report or {})
        said = job.progress_message
    if status not in job_service.FINISHED and status != JobStatus.ON_HOLD:
        return None
    error = said if status == JobStatus.ON_HOLD else report.get("error")
    if status == JobStatus.CANCELLED:
        error = error or "cancelled"  # as the runner says of a job it stopped here
    return JobOutcome(job_id, status, report, str(error) if error else None)


async def wait_for_end(
    classroom: Classroom, job_ids: list[int], *, each_poll: Callable[[int], None] | None = None
) -> list[JobOutcome]:
    """Wait until every job has ended; their outcomes, in order. While a job waits in the queue
    this process answers for it (renews its lease) until a worker starts it. `each_poll` is
    told how many have ended, every poll (a parent's progress and cancel check)."""
    holder = job_service.this_process()
    renew_every = job_service.heartbeat_seconds()
    renewed = 0.0
    outcomes: dict[int, JobOutcome] = {}
    while True:
        pending = [job_id for job_id in job_ids if job_id not in outcomes]
        going: set[int] = set()  # a few queries a poll, not one per job (a district's classes)
        with classroom.session() as session:
            for start in range(0, len(pending), 5000):
                going.update(
                    session.scalars(
                        select(Job.id).where(
                            Job.id.in_(pending[start : start + 5000]),
                            Job.status.not_in([*job_service.FINISHED, JobStatus.ON_HOLD]),
                        )
                    )
                )
        for job_id in pending:
            if job_id not in going and (outcome := ended(classroom, job_id)) is not None:
                outcomes[job_id] = outcome
        if len(outcomes) == len(job_ids):
            return [outcomes[job_id] for job_id in job_ids]
        if each_poll is not None:
            each_poll(len(outcomes))
        renewed += WAIT_POLL_S
        if renewed >= renew_every:
            renewed = 0.0
            waiting = [job_id for job_id in job_ids if job_id not in outcomes]
            with classroom.transaction() as session:
                for job_id in waiting:  # only queued ones are still this process's
                    job_service.renew_lease(session, job_id, holder)
        await asyncio.sleep(WAIT_POLL_S)


RESENT = "resent"
"""How many times the job's task was sent again because the broker lost it (in its params)."""
MAX_RESENDS = 3
"""After this many, a queued job whose task is lost once more is failed (something keeps losing
its tasks: a broker that forgets them, a queue no worker reads) rather than sent for ever."""


def waiting_in_queue() -> int | None:
    """How many tasks wait in sislink's queue at the broker (not those a worker has taken), or
    None when the broker cannot be asked (then nothing is sent again)."""
    from amqp.exceptions import ChannelError  # type: ignore[import-untyped]

    try:
        with celery_app().connection_for_write() as connection:
            connection.ensure_connection(max_retries=1)
            try:
                declared = connection.default_channel.queue_declare(
                    queue=queue_name(), passive=True
                )
            except ChannelError:  # no such queue (on Redis: an empty one): nothing waits
                return 0
            return int(declared.message_count)
    except Exception as caught:
        logger.warning(
            "the broker at %s could not be asked how many tasks wait (%s): no lost task is "
            "sent again now",
            broker_in_words(),
            type(caught).__name__,
        )
        return None


def lost_why(job: Job, now: Any, grace_s: float) -> str | None:
    """Why the job's task looks lost by the broker (in words), or None. A job handed to the
    workers whose task was sent at least `grace_s` ago and that is either queued while no
    task waits in the queue (the caller asks only then), or running for a worker that is gone
    with no heartbeat for the grace (the broker would have redelivered it by now)."""
    if not (job.params or {}).get(ON_WORKERS):
        return None
    grace = timedelta(seconds=grace_s)
    waited = now - runner.last_sent(job)
    if waited < grace:
        return None
    if job.status == JobStatus.QUEUED:
        return f"it was queued {waited.total_seconds():.0f} s ago and no task waits in the queue"
    if job.status != JobStatus.RUNNING:
        return None
    gone = job_service.holder_gone(job, now)
    beat = job.heartbeat_at
    if gone is None or beat is None or now - beat < grace:
        return None
    return f"{gone} and no worker has taken it over in {grace_s:g} s"


def resend_lost(classroom: Classroom) -> list[int]:
    """Send again the task of each job handed to the workers whose task the broker lost
    (`lost_why`); returns their ids. Any process may call it at any time: each job is sent
    again under its row's lock, and only if it is still lost as seen (so two processes
    looking at once send it once). Queued jobs count as lost only while no task waits in the
    queue: behind a backlog their tasks are still coming."""
    if runner.broker_url() is None:
        return []
    waiting = waiting_in_queue()
    if waiting is None:
        return []
    looked_at = [JobStatus.RUNNING, *([JobStatus.QUEUED] if waiting == 0 else [])]
    grace_s = runner.redelivery_grace_s()
    with classroom.session() as session:
        now = job_service.database_now(session)
        lost = [
            job.id
            for job in session.scalars(
                select(Job).where(Job.status.in_(looked_at)).order_by(Job.id)
            )
            if lost_why(job, now, grace_s) is not None
        ]
    sent: list[int] = []
    for job_id in lost:
        try:
            if _send_again(classroom, job_id, looked_at, grace_s):
                sent.append(job_id)
        except Exception:  # the broker or the database away: the next look tries again
            logger.warning("job %s: its lost task could not be sent again", job_id, exc_info=True)
    return sent


def _send_again(
    classroom: Classroom, job_id: int, looked_at: list[JobStatus], grace_s: float
) -> bool:
    with classroom.transaction() as session:
        job = session.scalars(select(Job).where(Job.id == job_id).with_for_update()).first()
        if job is None or job.status not in looked_at:
            return False
        now = job_service.database_now(session)
        why = lost_why(job, now, grace_s)
        if why is None:  # it started, ended, or another process sent it again just now
            return False
        gone = job_service.holder_gone(job, now)
        if job.cancel_requested and gone is not None:
            _end_cancelled(session, job, gone)
            return False
        params = dict(job.params or {})
        count = int(params.get(RESENT, 0) or 0)
        if count >= MAX_RESENDS:
            if job.status == JobStatus.QUEUED:
                sentence = (
                    f"Job {job_id} was never started by a worker: its task was lost by the "
                    f"broker at {broker_in_words()} {count + 1} times (the last: {why}), so it "
                    f"is not sent again. Check that workers read the queue {queue_name()!r} and "
                    "that the broker keeps its tasks (Redis: appendonly), then run it again."
                )
                job_service.finish_job(
                    session, job_id, JobStatus.FAILED, {**(job.report or {}), "error": sentence}
                )
                logger.warning("%s", sentence)
            return False  # running: failed as interrupted once the grace has passed again
        job.params = {**params, SENT_AT: now.isoformat(), RESENT: count + 1}
        session.flush()
        # Sent before the commit: a send that fails leaves the job as it was (the next look
        # tries again); a worker that gets the task at once waits for this row's lock.
        send_job(job_id)
        logger.warning(
            "job %s: its task was lost by the broker (%s); sent again (%d of at most %d)",
            job_id,
            why,
            count + 1,
            MAX_RESENDS,
        )
    return True


def _end_cancelled(session: Any, job: Job, gone: str) -> None:
    """End, as cancelled, a running job someone asked to stop whose worker is gone (the cancel
    came while it still looked alive, so only its flag was set): it is not run again only to
    stop at its first batch. Called with the job's row locked (read under the row's lock)."""
    report = {
        **(job.report or {}),
        "cancelled": True,
        "error": job_service.interrupted_sentence(job, gone),
    }
    job_service.finish_job(session, job.id, JobStatus.CANCELLED, report)
    logger.warning("job %s: asked to stop and its worker is gone (%s): cancelled", job.id, gone)


def look_for_lost_every_s() -> float:
    """How often a worker looks for lost tasks: a quarter of the grace, between 1 s and 60 s."""
    return min(60.0, max(1.0, runner.redelivery_grace_s() / 4))


class StillRunning(Exception):
    """The job runs on a living worker: this delivery waits (the task is retried later)."""


async def run_delivered(classroom: Classroom, job_id: int) -> JobOutcome | None:
    """A worker's part: run the job if it is still to be done. Returns its outcome, or None when
    there was nothing to do (it ended, or is on hold). Raises StillRunning when another living
    process runs it (a second delivery of the same task)."""
    with classroom.transaction() as session:
        # Read under the row's lock (PostgreSQL): a resend sends its task before it commits,
        # and a takeover decided on the row as it was before would write back its params
        # without the resend's count and time (the resends would never reach their limit).
        job = session.scalars(select(Job).where(Job.id == job_id).with_for_update()).first()
        if job is None or job.status in job_service.FINISHED or job.status == JobStatus.ON_HOLD:
            return None
        if job.status == JobStatus.RUNNING:
            now = job_service.database_now(session)
            gone = job_service.holder_gone(job, now)
            if gone is None:
                raise StillRunning(job_id)
            if job.cancel_requested:
                _end_cancelled(session, job, gone)
                return None
            taken = int((job.params or {}).get(TAKEN_OVER, 0) or 0)
            if taken >= MAX_TAKEOVERS:
                if not _give_up(session, job, now, gone, taken):
                    raise StillRunning(job_id)  # it changed since it was read: look again
                return None
            if not _take_over(session, job, now, taken + 1):
                raise StillRunning(job_id)  # another worker took it over just now
            logger.warning("job %s: taking it over here (%s)", job_id, gone)
    try:
        return await runner.execute_job_here(classroom, job_id)
    except Conflict:
        # Another delivery of the same task started it just now (the start is row-locked):
        # look again later, as for a job running elsewhere.
        raise StillRunning(job_id) from None


TAKEN_OVER = "taken_over"
"""How many times workers took the job over from a worker that died (in its params)."""
MAX_TAKEOVERS = 3
"""After this many, a job whose worker died again is failed, not run again: it may be what
kills them (a worker out of memory), and its task would otherwise go round for ever."""


def _as_read(job: Job) -> Any:
    """The job's row still held and leased as read (for a compare and set)."""
    expiry = Job.lease_expires_at
    lease = expiry.is_(None) if job.lease_expires_at is None else expiry == job.lease_expires_at
    return and_(
        Job.id == job.id,
        Job.status == JobStatus.RUNNING,
        Job.lease_holder == job.lease_holder,
        lease,
    )


def _give_up(session: Any, job: Job, now: Any, gone: str, taken: int) -> bool:
    """Fail a job whose worker died once more after MAX_TAKEOVERS takeovers (compare and set)."""
    sentence = (
        f"Job {job.id} stopped with the worker running it {taken + 1} times (the last: {gone}), "
        "so it is not run again: it may be what stops them (a worker out of memory?). Look at "
        "the workers' logs, then run it again."
    )
    failed = session.execute(
        update(Job)
        .where(_as_read(job))
        .values(
            status=JobStatus.FAILED,
            finished_at=utc_now(),
            report={**(job.report or {}), "error": sentence},
            active_lock=None,
        )
        .execution_options(synchronize_session=False)
    )
    if not int(getattr(failed, "rowcount", 0) or 0):
        return False
    session.execute(delete(JobLock).where(JobLock.job_id == job.id))
    logger.warning("%s", sentence)
    return True


def _take_over(session: Any, job: Job, now: Any, count: int) -> bool:
    """Make the running job of a gone process queued again, held by this one (compare and
    set: only if it is still as read, holder and lease: a worker on another machine that was
    only late renews its lease, and then keeps its job)."""
    me = job_service.this_process().token()
    taken = session.execute(
        update(Job)
        .where(_as_read(job))
        .values(
            status=JobStatus.QUEUED,
            params={**(job.params or {}), TAKEN_OVER: count},
            lease_holder=me,
            heartbeat_at=now,
            lease_expires_at=now + timedelta(seconds=job_service.lease_seconds()),
        )
        .execution_options(synchronize_session=False)
    )
    return int(getattr(taken, "rowcount", 0) or 0) > 0


_classroom: tuple[int, Classroom] | None = None


def worker_classroom() -> Classroom:
    """The classroom of this worker process (opened once per process, after any fork)."""
    global _classroom
    if _classroom is None or _classroom[0] != os.getpid():
        _classroom = (os.getpid(), open_classroom(Settings.from_env()))
    return _classroom[1]


def _run_job_task(task: Any, job_id: int) -> str:
    # The registered kinds (imported here so that their modules register them).
    import sislink.jobs.google_grades
    import sislink.jobs.google_roster
    import sislink.jobs.mark_export
    import sislink.jobs.roster  # noqa: F401

    try:
        outcome = asyncio.run(run_delivered(worker_classroom(), job_id))
    except StillRunning:
        # Look again once its lease would have run out, had its worker died.
        raise task.retry(countdown=job_service.lease_seconds()) from None
    except (OperationalError, InterfaceError) as away:
        # The database could not be reached before the job started (it restarts, the network
        # blinked): the task is tried again, not dropped with the job left queued for ever.
        # A job that did start records its own failure; a retry then finds it ended.
        logger.warning(
            "job %s: the database could not be reached (%s); its task is tried again in %g s",
            job_id,
            type(away.orig or away).__name__,
            job_service.lease_seconds(),
        )
        raise task.retry(countdown=job_service.lease_seconds()) from None
    return "nothing to do" if outcome is None else str(outcome.status)


_watch_classroom: list[Classroom] = []
"""The watch's own classroom, in the worker's main process. Not `worker_classroom()`: a pool
process forked later would find that one of another pid, open its own and let the inherited one
be collected, closing the main process's database connections from the child. This one stays
referenced (here) in every process, so no child ever closes it."""


def _look_for_lost_tasks(stop: threading.Event) -> None:
    """A worker's watch for lost tasks (`resend_lost`), until the worker stops."""
    while not stop.wait(look_for_lost_every_s()):
        try:
            if not _watch_classroom:
                _watch_classroom.append(open_classroom(Settings.from_env()))
            resend_lost(_watch_classroom[0])
        except Exception:  # the database away: the next look tries again
            logger.warning("looking for lost tasks failed", exc_info=True)


def start_worker(*, concurrency: int, pool: str = "prefork", loglevel: str = "INFO") -> None:
    """Run a Celery worker for sislink's queue in the foreground (`sislink worker`); once it is
    ready, a thread of its main process looks for tasks the broker lost (`resend_lost`)."""
    from celery.signals import worker_ready, worker_shutdown  # type: ignore[import-untyped]

    stop = threading.Event()

    def watch(**_: Any) -> None:
        threading.Thread(
            target=_look_for_lost_tasks, args=(stop,), name="sislink-lost-tasks", daemon=True
        ).start()

    def stopping(**_: Any) -> None:
        stop.set()

    worker_ready.connect(watch, weak=False)
    worker_shutdown.connect(stopping, weak=False)
    app = celery_app()
    app.worker_main(
        [
            "worker",
            f"--concurrency={concurrency}",
            f"--pool={pool}",
            f"--queues={queue_name()}",
            f"--hostname=sislink-{os.getpid()}@{socket.gethostname()}",
            f"--loglevel={loglevel}",
            "--without-gossip",
            "--without-mingle",
        ]
    )
