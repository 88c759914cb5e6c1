"""Jobs (imports, exports): record them, their progress and report; one unfinished job per lock.

Locks belong to living processes. A queued or running job carries a lease: the process that
holds it (`ProcessIdentity`: host, pid, when the process started, which machine) and when the
lease runs out, renewed by a heartbeat (jobs/runner.py) in the database's own time, so that
processes whose clocks disagree still agree on whether a lease ran out. Whoever next needs a
lock whose job's holder is gone (the CLI, the console, the scheduler) fails that job with a
sentence saying so, and takes the lock at once. A holder is gone when:

- it ran on this machine (same boot, same pid namespace) and its process has ended: known at
  once from /proc, however long its lease still had to run; a process on this machine that is
  still there keeps its lock even if its heartbeat is late (a long SQLite write, a paused
  process): nobody else releases a living holder's lock;
- it ran elsewhere (another host or container, or a system without /proc) and its lease ran
  out: no heartbeat for `lease_seconds()` (SISLINK_JOB_LEASE_SECONDS, 30 by default).

A held job (on hold for an administrator) has no process: it keeps its lock until approved,
discarded or cancelled.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session, object_session

from sislink.classroom.errors import Conflict, InvalidInput, NotFound
from sislink.classroom.models import Job, JobLock, JobStatus, Person, utc_now
from sislink.classroom.services.access import Actor, flush_or_conflict

FINISHED = frozenset(
    {JobStatus.SUCCEEDED, JobStatus.NEEDS_ATTENTION, JobStatus.FAILED, JobStatus.CANCELLED}
)
# Jobs a process holds (and may die holding); a held job waits for a person instead.
LEASED = (JobStatus.QUEUED, JobStatus.RUNNING)

# The param by which a class's export job, started by an export of every class on the workers
# (jobs/fan_out.py), names its parent job: its report, the summary e-mail and the stored
# reports of the parent find the classes' jobs by it.
PARENT_JOB = "parent_job_id"

LEASE_VARIABLE = "SISLINK_JOB_LEASE_SECONDS"
DEFAULT_LEASE_S = 30.0
# The heartbeat renews the lease this many times per lease, so a few late beats never lose it.
BEATS_PER_LEASE = 6
MIN_LEASE_S, MAX_LEASE_S = 0.5, 3600.0

# Words for the kinds of job, in the sentences that name a job holding a lock.
KIND_WORDS = {
    "mark_export": "mark export of one class",
    "mark_export_all": "mark export of every class",
    "roster_import": "roster import",
    "google_roster_sync": "roster sync to Google Classroom",
}


def lease_seconds(environ: Mapping[str, str] | None = None) -> float:
    """How long a job's lease lasts without a heartbeat (SISLINK_JOB_LEASE_SECONDS)."""
    raw = (os.environ if environ is None else environ).get(LEASE_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_LEASE_S
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not MIN_LEASE_S <= value <= MAX_LEASE_S:  # also false for nan
        raise InvalidInput(
            f"{LEASE_VARIABLE} is {raw!r}: give the seconds a job's lease lasts without a "
            f"heartbeat, between {MIN_LEASE_S:g} and {MAX_LEASE_S:g} (default {DEFAULT_LEASE_S:g})."
        )
    return value


def heartbeat_seconds(environ: Mapping[str, str] | None = None) -> float:
    """How often a running job renews its lease."""
    return lease_seconds(environ) / BEATS_PER_LEASE


@dataclass(frozen=True)
class ProcessIdentity:
    """Which process holds a job: enough to tell, from another process, whether it still runs.

    `machine` (the boot id and pid namespace) and `start` (the process's start time since boot)
    come from /proc on Linux; where they are unknown (""), only the lease can tell."""

    host: str
    pid: int
    start: str
    machine: str

    def token(self) -> str:
        return f"host={self.host};pid={self.pid};start={self.start};machine={self.machine}"

    @classmethod
    def parse(cls, token: str | None) -> ProcessIdentity | None:
        if not token:
            return None
        fields = dict(part.partition("=")[::2] for part in token.split(";"))
        try:
            pid = int(fields.get("pid", ""))
        except ValueError:
            return None
        return cls(fields.get("host", ""), pid, fields.get("start", ""), fields.get("machine", ""))

    def in_words(self) -> str:
        return f"the process {self.pid} on {self.host or 'an unknown host'}"

    def same_machine(self, other: ProcessIdentity) -> bool:
        """True when both are on this machine, in one pid namespace: pids mean the same."""
        return bool(self.machine) and self.machine == other.machine


_this_process: ProcessIdentity | None = None


def this_process() -> ProcessIdentity:
    """This process's identity (computed again after a fork: a worker is its own process)."""
    global _this_process
    pid = os.getpid()
    if _this_process is None or _this_process.pid != pid:
        _this_process = ProcessIdentity(
            host=socket.gethostname(),
            pid=pid,
            start=_process_start(pid) or "",
            machine=_machine_id(),
        )
    return _this_process


def _machine_id() -> str:
    """This boot of this machine and this pid namespace ("" where /proc cannot say)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""
    return f"{boot}/{namespace}" if boot and namespace else ""


# Where a process's stat file is (a module setting so that a test can show a /proc that hides
# other users' processes).
PROC_STAT = "/proc/{pid}/stat"


def _process_start(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot), or None if it is gone (or a zombie:
    it ended and nobody has collected it yet); "?" when it runs but /proc will not say more."""
    try:
        stat = Path(PROC_STAT.format(pid=pid)).read_text()
    except FileNotFoundError:
        # /proc mounted with hidepid=2 hides other users' processes as if they had ended: ask
        # the kernel itself. Only "no such process" means gone.
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except OSError:
            return "?"  # there, but another user's (PermissionError): it runs
        return "?"
    except OSError:
        return "?"  # there, but not ours to read: it runs
    # The command name (field 2) may hold spaces and parentheses: count after its last ")".
    after_name = stat.rpartition(")")[2].split()
    if len(after_name) < 20:
        return "?"
    state, start = after_name[0], after_name[19]
    return None if state in ("Z", "X") else start


def holder_ended(holder: ProcessIdentity) -> bool | None:
    """True when the holder ran on this machine and has ended, False when it runs here, None
    when this process cannot see it (another machine): then only the lease tells."""
    here = this_process()
    if not holder.same_machine(here):
        return None
    start = _process_start(holder.pid)
    if start is None:
        return True
    # Another process may have been given the same pid since: then the holder has ended.
    return bool(holder.start) and start != "?" and start != holder.start


def database_now(session: Session) -> datetime:
    """The database's clock (UTC): every process sharing the database reads the same one."""
    if session.get_bind().dialect.name == "postgresql":
        value = session.scalar(text("SELECT clock_timestamp()"))
    else:
        stamp = session.scalar(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')"))
        value = datetime.fromisoformat(str(stamp))
    if not isinstance(value, datetime):
        raise InvalidInput(f"The database answered {value!r} when asked the time.")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def lock_key_for(*, connection_id: int | None = None, class_id: int | None = None) -> str:
    """The lock a job takes: at most one unfinished job per connection, or per class."""
    if class_id is not None:
        return f"class:{class_id}"
    if connection_id is not None:
        return f"connection:{connection_id}"
    raise InvalidInput("A locked job must be about a connection or a class.")


def queue_job(
    session: Session,
    actor: Actor,
    kind: str,
    *,
    connection_id: int | None = None,
    class_id: int | None = None,
    lock_key: str | None = None,
) -> Job:
    """Record a queued job, held by this process. Conflict if a living job holds the lock (a
    job whose holder is gone is failed first, and its lock taken over)."""
    now = database_now(session)
    if lock_key:
        _free_or_refuse(session, lock_key, now)
    job = Job(
        kind=kind,
        status=JobStatus.QUEUED,
        connection_id=connection_id,
        class_id=class_id,
        lock_key=lock_key,
        active_lock=lock_key,
        requested_by_id=actor.person_id,
        report={},
        lease_holder=this_process().token(),
        heartbeat_at=now,
        lease_expires_at=now + timedelta(seconds=lease_seconds()),
    )
    session.add(job)
    busy = f"Another {kind} job for the same thing started just now; wait for it."
    flush_or_conflict(session, busy)
    if lock_key:
        session.add(JobLock(lock_key=lock_key, job_id=job.id, taken_at=now))
        flush_or_conflict(session, busy)
    return job


def take_lock(session: Session, job_id: int, lock_key: str) -> None:
    """Let a running job hold one more lock (an export of every class takes each class's in
    turn). Conflict, naming the job that holds it, if a living job does."""
    now = database_now(session)
    holder = find_unfinished(session, lock_key)
    if holder is not None and holder.id == job_id:
        return
    _free_or_refuse(session, lock_key, now)
    session.add(JobLock(lock_key=lock_key, job_id=job_id, taken_at=now))
    flush_or_conflict(
        session, f"Another job took {_lock_in_words(lock_key)} just now; it is working on it."
    )


def release_lock(session: Session, job_id: int, lock_key: str) -> None:
    """Give back a lock taken with `take_lock` (the job's own lock goes when it ends)."""
    session.execute(delete(JobLock).where(JobLock.lock_key == lock_key, JobLock.job_id == job_id))


def _free_or_refuse(session: Session, lock_key: str, now: datetime) -> None:
    holder = find_unfinished(session, lock_key)
    if holder is None:
        return
    if end_if_holder_gone(session, holder, now) is None:
        # It lives, or it renewed its lease just now (then it is read again): refuse, naming it.
        session.expire(holder)
        holder = find_unfinished(session, lock_key)
        if holder is not None:
            raise Conflict(_busy(holder, lock_key))
    session.flush()


def find_unfinished(session: Session, lock_key: str) -> Job | None:
    """The unfinished job holding `lock_key` (its own lock, or one it took while working), if
    any: the only record of who holds a lock (`job_lock`)."""
    return session.scalars(
        select(Job).join(JobLock, JobLock.job_id == Job.id).where(JobLock.lock_key == lock_key)
    ).first()


def holder_gone(job: Job, now: datetime) -> str | None:
    """Why a queued or running job's holder is gone (in words), or None while it lives."""
    if job.status not in LEASED:
        return None
    holder = ProcessIdentity.parse(job.lease_holder)
    if holder is None:
        return "it was started by an earlier version of sislink, which has stopped"
    ended = holder_ended(holder)
    if ended is True:
        return f"{holder.in_words()} has ended"
    if ended is False:
        return None  # it runs on this machine: its lock is its own, however late its heartbeat
    expires = job.lease_expires_at
    if expires is None or expires <= now:
        since = job.heartbeat_at or job.created_at
        return (
            f"{holder.in_words()} no longer answers: no heartbeat since "
            f"{since.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
        )
    return None


def end_if_holder_gone(session: Session, job: Job, now: datetime | None = None) -> str | None:
    """Fail a queued or running job whose holder is gone, releasing its locks; returns the
    sentence it ended with, or None (the job lives, or was not one a process holds).

    `job` is the job as it was read (perhaps in another session, a moment ago): it is failed
    only if it is still as read (compare and set), so a heartbeat that renewed its lease in
    between keeps the job its holder's."""
    reason = holder_gone(job, now or database_now(session))
    if reason is None:
        return None
    sentence = interrupted_sentence(job, reason)
    seen_expiry = Job.lease_expires_at
    still_as_read = (
        seen_expiry.is_(None)
        if job.lease_expires_at is None
        else seen_expiry == job.lease_expires_at
    )
    seen_holder = Job.lease_holder
    held_as_read = (
        seen_holder.is_(None) if job.lease_holder is None else seen_holder == job.lease_holder
    )
    failed = session.execute(
        update(Job)
        .where(Job.id == job.id, Job.status.in_(LEASED), held_as_read, still_as_read)
        .values(
            status=JobStatus.FAILED,
            finished_at=utc_now(),
            report={**(job.report or {}), "error": sentence},
            active_lock=None,
        )
        .execution_options(synchronize_session=False)
    )
    if int(getattr(failed, "rowcount", 0) or 0) == 0:
        return None  # it renewed its lease, or ended, since it was read
    session.execute(delete(JobLock).where(JobLock.job_id == job.id))
    if job in session:
        session.expire(job)
    return sentence


def interrupted_sentence(job: Job, reason: str) -> str:
    when = "before this job started" if job.status == JobStatus.QUEUED else "while this job ran"
    return (
        f"sislink stopped {when} ({reason}); it is safe to run again: what was done is not "
        "done twice."
    )


def jobs_whose_holder_is_gone(session: Session) -> list[Job]:
    """The queued or running jobs whose holder is gone, read without writing anything: a plain
    read session will do (on SQLite it does not wait for a writer, such as a long import)."""
    now = database_now(session)
    leased = session.scalars(select(Job).where(Job.status.in_(LEASED)).order_by(Job.id)).all()
    return [job for job in leased if holder_gone(job, now) is not None]


def end_jobs_whose_holder_is_gone(
    session: Session, candidates: Sequence[Job] | None = None
) -> list[int]:
    """Fail every queued or running job whose holder is gone (a runner starting, the scheduler's
    tick); jobs of living processes, here or elsewhere, are left alone. `candidates` are those
    `jobs_whose_holder_is_gone` found in a read session: each is failed only if it is still as
    it was read then."""
    now = database_now(session)
    found = jobs_whose_holder_is_gone(session) if candidates is None else candidates
    return [job.id for job in found if end_if_holder_gone(session, job, now) is not None]


def renew_lease(session: Session, job_id: int, holder: ProcessIdentity) -> bool:
    """The heartbeat: extend the job's lease if `holder` still holds it. False once it does not
    (the job ended, or was taken over because its heartbeat stopped): the job must stop."""
    now = database_now(session)
    renewed = session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            Job.lease_holder == holder.token(),
            Job.status.in_(LEASED),
        )
        .values(heartbeat_at=now, lease_expires_at=now + timedelta(seconds=lease_seconds()))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(renewed, "rowcount", 0) or 0) > 0


def start_job(session: Session, job_id: int, *, total: int | None = None) -> Job:
    """Mark a queued job running, held by this process (which may not be the one that queued
    it: a worker); its lease starts now."""
    job = get_job(session, job_id)
    if job.status != JobStatus.QUEUED:
        if job.status == JobStatus.FAILED and (job.report or {}).get("error"):
            raise Conflict(f"Job {job.id} cannot start: {job.report['error']}")
        raise Conflict(f"Job {job.id} is {job.status}, so it cannot start.")
    now = database_now(session)
    job.status = JobStatus.RUNNING
    job.started_at = now
    job.progress_total = total
    job.lease_holder = this_process().token()
    job.heartbeat_at = now
    job.lease_expires_at = now + timedelta(seconds=lease_seconds())
    return job


def update_progress(
    session: Session, job_id: int, done: int, *, total: int | None = None, message: str = ""
) -> Job:
    job = get_job(session, job_id)
    job.progress_done = done
    if total is not None:
        job.progress_total = total
    job.progress_message = message
    return job


def hold_job(session: Session, job_id: int, reason: str, report: Mapping[str, Any]) -> Job:
    """Put a job on hold for an administrator to review: it keeps its own lock (no other job
    for the same thing runs meanwhile), but no process holds it any more."""
    job = get_job(session, job_id)
    job.status = JobStatus.ON_HOLD
    job.progress_message = reason
    job.report = dict(report)
    session.execute(
        delete(JobLock).where(JobLock.job_id == job_id, JobLock.lock_key != (job.lock_key or ""))
    )
    return job


def finish_job(session: Session, job_id: int, status: JobStatus, report: Mapping[str, Any]) -> Job:
    """End a job as succeeded, failed or cancelled, with its report; its locks are released."""
    if status not in FINISHED:
        raise InvalidInput(f"A job ends as succeeded, failed or cancelled, not {status}.")
    job = get_job(session, job_id)
    if job.status in FINISHED:
        raise Conflict(f"Job {job.id} already ended as {job.status}.")
    job.status = status
    job.finished_at = utc_now()
    job.report = dict(report)
    job.active_lock = None
    session.execute(delete(JobLock).where(JobLock.job_id == job_id))
    return job


def cancel_connection_jobs(session: Session, connection_id: int) -> list[int]:
    """Ask every unfinished job of a connection to stop (it was disconnected): queued and held
    jobs end now, and so do running ones whose process is gone (killed: nobody would stop them);
    living running ones stop at their next batch. Returns their ids."""
    unfinished = session.scalars(
        select(Job).where(Job.connection_id == connection_id, Job.status.not_in(FINISHED))
    ).all()
    now = database_now(session) if unfinished else None
    for job in unfinished:
        job.cancel_requested = True
        report = {**(job.report or {}), "cancelled": True}
        gone = holder_gone(job, now) if now is not None else None
        if gone is not None:
            report["error"] = interrupted_sentence(job, gone)
        if gone is not None or job.status in (JobStatus.QUEUED, JobStatus.ON_HOLD):
            finish_job(session, job.id, JobStatus.CANCELLED, report)
    return [job.id for job in unfinished]


def get_job(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"There is no job with id {job_id}.")
    return job


def recent_jobs(
    session: Session,
    *,
    kind: str | None = None,
    connection_id: int | None = None,
    class_id: int | None = None,
    limit: int = 50,
) -> Sequence[Job]:
    statement = select(Job).order_by(Job.created_at.desc(), Job.id.desc())
    if kind is not None:
        statement = statement.where(Job.kind == kind)
    if connection_id is not None:
        statement = statement.where(Job.connection_id == connection_id)
    if class_id is not None:
        statement = statement.where(Job.class_id == class_id)
    return session.scalars(statement.limit(limit)).all()


def _lock_in_words(lock_key: str) -> str:
    kind, _, number = lock_key.rpartition(":")
    if kind.endswith("class"):
        return f"class {number}"
    if kind.endswith("connection"):
        return f"SIS connection {number}"
    return lock_key


def _busy(job: Job, lock_key: str) -> str:
    """Which job holds the lock, in words: what it is, who asked, where it runs."""
    kind = KIND_WORDS.get(job.kind, job.kind.replace("_", " "))
    status = str(job.status).replace("_", " ")
    asked = ""
    session = object_session(job)
    if job.requested_by_id is not None and session is not None:
        person = session.get(Person, job.requested_by_id)
        asked = f", asked by {person.name}" if person is not None else ""
    working = (
        f"; it is working on {_lock_in_words(lock_key)} now"
        if lock_key != job.lock_key
        else " for the same thing"
    )
    holder = ProcessIdentity.parse(job.lease_holder)
    where = (
        f" ({holder.in_words()}, still running)"
        if holder is not None and job.status in LEASED
        else ""
    )
    return (
        f"A {job.kind} job (number {job.id}: {kind}{asked}) is already {status}{working}"
        f"{where}; wait for it to finish, or cancel it."
    )
