"""Scheduled roster imports: the interval, the pause window, and the loop that runs them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from connected_for_jobs import save_authorised_connection
from sislink.classroom import Actor, Classroom, InvalidInput, open_classroom
from sislink.classroom.models import Job, JobStatus
from sislink.classroom.services.jobs import lock_key_for
from sislink.classroom.services.time_zone import set_school_time_zone
from sislink.jobs.runner import JobOutcome, queue, run_job
from sislink.jobs.schedule import (
    Schedule,
    due_import,
    get_schedule,
    scheduler_loop,
    set_schedule,
    tick,
)
from sislink.sync.roster_holds import ROSTER_IMPORT


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def connected(tmp_path: Path) -> Iterator[tuple[Classroom, int]]:
    classroom = open_classroom(f"sqlite:///{tmp_path / 'schedule.db'}")
    connection_id = save_authorised_connection(classroom, token_url="https://sis.example.org/token")
    try:
        yield classroom, connection_id
    finally:
        classroom.close()


async def pretend_import(classroom: Classroom, connection_id: int) -> JobOutcome:
    async def work(_context: object) -> dict[str, str]:
        return {"status": "applied"}

    return await run_job(
        classroom,
        kind=ROSTER_IMPORT,
        actor=Actor.system(),
        work=work,  # type: ignore[arg-type]
        lock_key=lock_key_for(connection_id=connection_id),
        connection_id=connection_id,
    )


def test_the_default_schedule_is_every_six_hours_with_no_pause(tmp_path: Path) -> None:
    classroom = open_classroom(f"sqlite:///{tmp_path / 'default.db'}")
    assert get_schedule(classroom) == Schedule(True, 360, None, None)
    classroom.close()


@pytest.mark.anyio
async def test_an_import_is_due_once_the_interval_has_passed(
    connected: tuple[Classroom, int],
) -> None:
    classroom, connection_id = connected
    set_schedule(classroom, Actor.system(), Schedule(interval_minutes=60))
    assert due_import(classroom) == (True, "due")
    await pretend_import(classroom, connection_id)
    now = datetime.now(UTC)
    assert due_import(classroom, now + timedelta(minutes=30))[0] is False
    assert due_import(classroom, now + timedelta(minutes=61))[0] is True


@pytest.mark.anyio
async def test_a_clock_set_back_does_not_stop_scheduled_imports_until_it_catches_up(
    connected: tuple[Classroom, int],
) -> None:
    """The last import started while the server's clock ran days ahead (a virtual machine
    restored with a wrong clock, then corrected): the next is due now, not days later, when the
    corrected clock reaches it. A start a little ahead of this clock (another `serve`'s clock a
    little ahead of this one's) still counts as just now."""
    classroom, connection_id = connected
    set_schedule(classroom, Actor.system(), Schedule(interval_minutes=60))
    ahead = await pretend_import(classroom, connection_id)
    now = datetime.now(UTC)
    assert due_import(classroom, now - timedelta(minutes=5))[0] is False
    with classroom.transaction() as session:  # stamped while the clock ran 3 days ahead
        job = session.get(Job, ahead.job_id)
        assert job is not None
        job.created_at = now + timedelta(days=3)
    assert due_import(classroom, now) == (True, "due")
    await pretend_import(classroom, connection_id)
    # The import just made is the last: not due again at every tick until the clock catches up.
    assert due_import(classroom, datetime.now(UTC) + timedelta(minutes=5))[0] is False


def test_no_import_is_due_inside_the_pause_window_or_when_switched_off(
    connected: tuple[Classroom, int],
) -> None:
    classroom, _ = connected
    with classroom.transaction() as session:  # the days below are UTC's
        set_school_time_zone(session, Actor.system(), "UTC")
    summer = Schedule(pause_from=date(2026, 7, 1), pause_until=date(2026, 8, 15))
    set_schedule(classroom, Actor.system(), summer)
    assert due_import(classroom, datetime(2026, 7, 20, tzinfo=UTC)) == (
        False,
        "inside the pause window",
    )
    assert due_import(classroom, datetime(2026, 8, 16, tzinfo=UTC))[0] is True
    set_schedule(classroom, Actor.system(), Schedule(enabled=False))
    assert due_import(classroom)[0] is False


@pytest.mark.parametrize(
    ("zone", "moment", "paused"),
    [
        # Sydney (UTC+10): the first paused morning, and the morning after the last paused day.
        ("Australia/Sydney", datetime(2026, 6, 30, 20, 0, tzinfo=UTC), True),
        ("Australia/Sydney", datetime(2026, 8, 15, 15, 0, tzinfo=UTC), False),
        # Chicago (UTC-5): the last paused evening, and the evening before the first paused day.
        ("America/Chicago", datetime(2026, 8, 16, 3, 0, tzinfo=UTC), True),
        ("America/Chicago", datetime(2026, 7, 1, 3, 0, tzinfo=UTC), False),
    ],
)
def test_the_pause_window_is_the_schools_days_in_its_time_zone(
    zone: str, moment: datetime, paused: bool, connected: tuple[Classroom, int]
) -> None:
    """The administrator pauses imports from 1 July to 15 August (the SIS rolls over): those
    are the school's days, as the console shows every date, not days in UTC."""
    classroom, _ = connected
    with classroom.transaction() as session:
        set_school_time_zone(session, Actor.system(), zone)
    summer = Schedule(pause_from=date(2026, 7, 1), pause_until=date(2026, 8, 15))
    set_schedule(classroom, Actor.system(), summer)
    assert due_import(classroom, moment) == (
        (False, "inside the pause window") if paused else (True, "due")
    )


def test_no_import_is_due_while_another_is_running_or_on_hold(
    connected: tuple[Classroom, int],
) -> None:
    classroom, connection_id = connected
    job_id = queue(
        classroom,
        kind=ROSTER_IMPORT,
        actor=Actor.system(),
        lock_key=lock_key_for(connection_id=connection_id),
        connection_id=connection_id,
    )
    due, why = due_import(classroom)
    assert not due and f"job {job_id}" in why


def test_a_schedule_with_a_backwards_pause_window_is_refused(tmp_path: Path) -> None:
    classroom = open_classroom(f"sqlite:///{tmp_path / 'bad.db'}")
    with pytest.raises(InvalidInput, match="swap"):
        set_schedule(
            classroom,
            Actor.system(),
            Schedule(pause_from=date(2026, 8, 1), pause_until=date(2026, 7, 1)),
        )
    classroom.close()


@pytest.mark.anyio
async def test_the_scheduler_loop_runs_a_due_import_then_waits_for_the_interval(
    connected: tuple[Classroom, int],
) -> None:
    classroom, connection_id = connected
    runs: list[JobOutcome] = []
    stop = asyncio.Event()
    ran = asyncio.Event()

    async def run_import(room: Classroom) -> JobOutcome:
        outcome = await pretend_import(room, connection_id)
        runs.append(outcome)
        ran.set()
        return outcome

    loop = asyncio.create_task(
        scheduler_loop(classroom, run_import=run_import, tick_s=0.01, stop=stop)
    )
    await ran.wait()
    await asyncio.sleep(0.1)  # many ticks: the interval (6 h) has not passed
    stop.set()
    await loop
    assert len(runs) == 1
    assert runs[0].status is JobStatus.SUCCEEDED
    assert await tick(classroom, run_import) is None


def test_an_interval_longer_than_a_year_is_refused_in_words(classroom: Classroom) -> None:
    # On PostgreSQL such a number did not fit the column: the REST API answered 500.
    with pytest.raises(InvalidInput, match="at least once a year"):
        set_schedule(classroom, Actor.system(), Schedule(interval_minutes=301835972404828224))
    assert get_schedule(classroom).interval_minutes == 360
