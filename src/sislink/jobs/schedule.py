"""Scheduled roster imports: every `interval_minutes`, except inside the pause window.

`sislink serve` starts `scheduler_loop(classroom)`; each tick sends again the tasks a broker lost
(with SISLINK_BROKER_URL: `celery_app.resend_lost`), fails the jobs whose process is
gone (`recover_interrupted`), sends the morning summary e-mail when its hour has come and no
process has sent it today (`operations.summary.daily_summary_tick`), then asks `due_import`
whether an import should run now (enabled, outside the pause window, the interval passed since
the last roster import started, no import running or on hold) and runs it through the job runner.
The settings live in the RosterSchedule row (`get_schedule` / `set_schedule`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select, text

from sislink.classroom import Actor, Classroom, ClassroomError, InvalidInput
from sislink.classroom.models import Job, RosterSchedule
from sislink.classroom.services.access import require_admin
from sislink.classroom.services.jobs import find_unfinished, lock_key_for
from sislink.classroom.services.time_zone import school_time_zone
from sislink.jobs.roster import run_roster_import
from sislink.jobs.runner import JobOutcome, broker_url, recover_interrupted
from sislink.operations.summary import daily_summary_tick
from sislink.sync.errors import SyncError
from sislink.sync.roster_holds import ROSTER_IMPORT
from sislink.sync.sis_client import authorised_connection

logger = logging.getLogger("sislink.jobs.schedule")

DEFAULT_INTERVAL_MINUTES = 360
# At least once a year: a longer interval is a typo (and would not fit the database's column).
MAX_INTERVAL_MINUTES = 366 * 24 * 60
TICK_S = 60.0


@dataclass(frozen=True)
class Schedule:
    enabled: bool = True
    interval_minutes: int = DEFAULT_INTERVAL_MINUTES
    pause_from: date | None = None
    pause_until: date | None = None

    def paused_on(self, day: date) -> bool:
        """True inside the pause window (inclusive; `day` is the school's, in its time zone); an
        open end pauses from / until forever."""
        if self.pause_from is None and self.pause_until is None:
            return False
        after_start = self.pause_from is None or day >= self.pause_from
        before_end = self.pause_until is None or day <= self.pause_until
        return after_start and before_end

    def to_dict(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "interval_minutes": self.interval_minutes,
            "pause_from": self.pause_from.isoformat() if self.pause_from else None,
            "pause_until": self.pause_until.isoformat() if self.pause_until else None,
        }


def get_schedule(classroom: Classroom) -> Schedule:
    with classroom.session() as session:
        row = session.get(RosterSchedule, 1)
        if row is None:
            return Schedule()
        return Schedule(row.enabled, row.interval_minutes, row.pause_from, row.pause_until)


def set_schedule(classroom: Classroom, actor: Actor, schedule: Schedule) -> Schedule:
    """Save the schedule (an administrator's setting)."""
    require_admin(actor, "change the roster import schedule")
    if schedule.interval_minutes < 5:
        raise InvalidInput("Run scheduled imports at most every 5 minutes (interval_minutes >= 5).")
    if schedule.interval_minutes > MAX_INTERVAL_MINUTES:
        raise InvalidInput(
            f"Run scheduled imports at least once a year (interval_minutes <= "
            f"{MAX_INTERVAL_MINUTES}); to stop them, switch the schedule off."
        )
    if schedule.pause_from and schedule.pause_until and schedule.pause_from > schedule.pause_until:
        raise InvalidInput("The pause window ends before it starts; swap the two dates.")
    with classroom.transaction() as session:
        row = session.get(RosterSchedule, 1) or RosterSchedule(id=1)
        session.add(row)
        row.enabled = schedule.enabled
        row.interval_minutes = schedule.interval_minutes
        row.pause_from = schedule.pause_from
        row.pause_until = schedule.pause_until
    return schedule


def due_import(classroom: Classroom, now: datetime | None = None) -> tuple[bool, str]:
    """Whether a scheduled roster import should start now, and why (or why not)."""
    now = now or datetime.now(UTC)
    schedule = get_schedule(classroom)
    if not schedule.enabled:
        return False, "scheduled imports are switched off"
    with classroom.session() as session:
        # The window's dates are the school's days (as the console shows every date), not UTC's.
        zone = school_time_zone(session).zone
    if schedule.paused_on(now.astimezone(zone).date()):
        return False, "inside the pause window"
    try:
        connection = authorised_connection(classroom)
    except SyncError as exc:
        return False, str(exc)
    with classroom.session() as session:
        busy = find_unfinished(session, lock_key_for(connection_id=connection.id))
        if busy is not None:
            return False, f"job {busy.id} ({busy.kind}) is {busy.status}"
        last = session.scalar(
            select(Job.created_at)
            .where(Job.kind == ROSTER_IMPORT, Job.connection_id == connection.id)
            # The last recorded, not the latest stamped: one stamped by a clock that ran ahead
            # must not stay "the last" after the clock was set back.
            .order_by(Job.id.desc())
            .limit(1)
        )
    interval = timedelta(minutes=schedule.interval_minutes)
    # A start more than an interval ahead of this clock was recorded by a clock that ran ahead
    # (then set back): waiting for this clock to reach it would skip imports for as long. A
    # start less ahead is another `serve`'s clock a little ahead of this one's: just now.
    if last is not None and -interval < now - last < interval:
        return False, f"the last import started at {last.isoformat()}"
    return True, "due"


RunImport = Callable[[Classroom], Awaitable[JobOutcome]]

# The advisory lock's key: per schema, so that installations sharing a database (or tests, one
# schema each) do not wait for each other.
_PG_KEY = "hashtext(current_schema() || :name)"
_PG_NAME = {"name": ":sislink-scheduler"}


@contextlib.contextmanager
def scheduler_turn(classroom: Classroom) -> Iterator[bool]:
    """Yields True while this process holds the scheduler's turn (no other process decides or
    fires a scheduled import meanwhile), False when another holds it. Never waits.

    Only one scheduler fires each run, however many `serve` processes are up: a tick decides
    and runs only with the turn, a PostgreSQL advisory lock (session level, per schema) or, on
    SQLite, an exclusive lock on a file next to the database. The next process to get the turn
    sees the import the last one recorded, so it is no longer due. A lock rather than Celery
    beat: no process of its own to run, nothing to configure, and a dead holder's lock goes
    with its database connection (or its file handle) at once."""
    engine = classroom.engine
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            mine = bool(
                connection.scalar(text(f"SELECT pg_try_advisory_lock({_PG_KEY})"), _PG_NAME)
            )
            connection.commit()  # the lock is the session's: no transaction stays open
            try:
                yield mine
            finally:
                if mine:
                    connection.execute(text(f"SELECT pg_advisory_unlock({_PG_KEY})"), _PG_NAME)
                    connection.commit()
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield True  # only this process can open it
        return
    with open(f"{database}.scheduler.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


async def tick(
    classroom: Classroom, run_import: RunImport, now: datetime | None = None
) -> JobOutcome | None:
    """One scheduler step: run an import if one is due; returns its outcome, or None.

    First, jobs whose process is gone (killed) are failed and their locks released, so that a
    killed import does not stop every scheduled one after it."""
    if broker_url() is not None:
        # Tasks the broker lost are sent again first (so that a job whose task is sent again
        # is not then failed as interrupted); on a thread, as it asks the broker.
        from sislink.jobs.celery_app import resend_lost

        try:
            await asyncio.to_thread(resend_lost, classroom)
        except Exception:  # the database away: the next tick looks again
            logger.exception("looking for tasks the broker lost failed")
    # On a thread: its write (when a job is gone) may wait for another writer, such as an
    # import's write phase on SQLite, and the event loop serves the console meanwhile.
    interrupted = await asyncio.to_thread(recover_interrupted, classroom)
    if interrupted:
        logger.warning("jobs %s were left by a process that stopped: failed", interrupted)
    try:  # on a thread: SMTP and the database's write wait are blocking
        await asyncio.to_thread(daily_summary_tick, classroom, now=now)
    except Exception:  # the summary must never stop the imports
        logger.exception("the morning summary failed")
    with scheduler_turn(classroom) as mine:
        if not mine:
            logger.debug("no scheduled roster import: another process's scheduler decides now")
            return None
        due, why = due_import(classroom, now)
        if not due:
            logger.debug("no scheduled roster import: %s", why)
            return None
        try:
            return await run_import(classroom)
        except (ClassroomError, SyncError) as exc:  # e.g. another import took the lock just now
            logger.info("scheduled roster import not started: %s", exc)
            return None


async def scheduler_loop(
    classroom: Classroom,
    *,
    run_import: RunImport | None = None,
    tick_s: float = TICK_S,
    stop: asyncio.Event | None = None,
) -> None:
    """Run scheduled imports until `stop` is set (or the task is cancelled): `sislink serve`."""
    chosen = run_import or _default_import
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            await tick(classroom, chosen)
        except Exception:
            # A scheduler that dies stops every later import: log and keep going.
            logger.exception("scheduled roster import failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=tick_s)


async def _default_import(classroom: Classroom) -> JobOutcome:
    outcome = await run_roster_import(classroom, Actor.system())
    if outcome.succeeded:
        await _then_google_roster(classroom)
    return outcome


async def _then_google_roster(classroom: Classroom) -> None:
    """After a scheduled roster import that finished, the roster into Google Classroom (issue
    13), when sislink is connected to it: the same job as "Sync roster to Classroom"."""
    from sislink.jobs.google_roster import run_google_roster_sync
    from sislink.sync.google_roster import google_connection_for_sync

    try:
        google_connection_for_sync(classroom)
    except SyncError:
        return  # not connected to Google Classroom: nothing to push
    try:
        synced = await run_google_roster_sync(classroom, Actor.system())
    except (ClassroomError, SyncError) as exc:  # e.g. a sync on hold keeps its lock
        logger.info("scheduled roster sync to Google Classroom not started: %s", exc)
        return
    logger.info("scheduled roster sync to Google Classroom %s: %s", synced.job_id, synced.status)
