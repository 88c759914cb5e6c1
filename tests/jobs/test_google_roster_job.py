"""The roster sync to Google Classroom as a job: it ends needs_attention when people were left
out, is held past the shrink guard (keeping its lock: no other sync runs), and an administrator
discards the removals (nobody removed) or approves exactly them. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from sislink.classroom import Classroom, Conflict, open_classroom
from sislink.classroom.models import Class, Enrolment, JobStatus
from sislink.classroom.secrets import SecretBox
from sislink.googleclassroom import ClientSettings
from sislink.googleclassroom.emulator import ClassroomConfig
from sislink.jobs import google_roster as roster_job
from sislink.jobs.runner import JobOutcome, request_cancel
from sislink.sync.google_roster import google_connection_for_sync, open_google_client
from sync.google_roster_world import (
    ADMIN,
    World,
    aliases,
    classroom_courses,
    classroom_matches_the_sis,
    district,
)


@pytest.fixture
def world(classroom: Classroom) -> Iterator[World]:
    with district(classroom) as made:
        yield made


@pytest.fixture
def sqlite_world(tmp_path: Path) -> Iterator[World]:
    opened = open_classroom(f"sqlite:///{tmp_path / 'job.db'}", secret_box=SecretBox.generate())
    try:
        with district(opened) as made:
            yield made
    finally:
        opened.close()


def _run(world: World, shrink_threshold: float = 0.10) -> JobOutcome:
    connection = google_connection_for_sync(world.classroom)
    fast = ClientSettings(backoff_base_s=0.01, backoff_cap_s=0.05)
    with open_google_client(world.classroom, connection, fast) as client:
        return asyncio.run(
            roster_job.run_google_roster_sync(
                world.classroom, ADMIN, client=client, shrink_threshold=shrink_threshold
            )
        )


def test_a_held_sync_keeps_its_lock_and_is_discarded_or_approved(world: World) -> None:
    first = _run(world)
    assert first.status == JobStatus.SUCCEEDED
    klass = world.classes()[3]
    sid = str(klass.sis_sourced_id)
    leaving = sorted(world.roster()[sid][2])[:6]
    for email in leaving:
        world.end_enrolment(email, sid)
    world.import_roster()

    held = _run(world, shrink_threshold=0.005)
    assert held.status == JobStatus.ON_HOLD
    assert [h["email"] for h in held.report["held"]] == leaving
    assert [h["job_id"] for h in roster_job.holds(world.classroom)] == [held.job_id]
    with pytest.raises(Conflict):
        _run(world)
    alias = aliases(world)[sid]
    assert set(leaving) <= classroom_courses(world.google)[alias][2]

    discarded = roster_job.discard_hold(world.classroom, held.job_id, ADMIN)
    assert discarded["status"] == "discarded"
    assert set(leaving) <= classroom_courses(world.google)[alias][2]

    again = _run(world, shrink_threshold=0.005)
    assert again.status == JobStatus.ON_HOLD
    approved = asyncio.run(roster_job.approve_hold(world.classroom, again.job_id, ADMIN))
    assert approved.status == JobStatus.SUCCEEDED
    assert approved.report["counts"]["students"]["removed"] == 6
    assert not set(leaving) & classroom_courses(world.google)[alias][2]
    history = roster_job.history(world.classroom)
    assert [h["status"] for h in history] == ["succeeded", "succeeded", "cancelled", "succeeded"]
    assert history[1]["report"]["status"] == "approved"
    assert history[2]["report"]["status"] == "discarded"


def test_a_sync_that_left_someone_out_ends_needs_attention(sqlite_world: World) -> None:
    world = sqlite_world
    klass = world.classes()[0]
    with world.classroom.transaction() as session:
        session.execute(update(Class).where(Class.id == klass.id).values(primary_teacher_id=None))
        session.execute(
            update(Enrolment)
            .where(Enrolment.class_id == klass.id, Enrolment.role == "teacher")
            .values(active=False)
        )
    outcome = _run(world)
    assert outcome.status == JobStatus.NEEDS_ATTENTION
    assert outcome.report["attention"]["count"] == 1
    assert "has no primary teacher" in outcome.report["attention"]["reasons"][0]


def test_a_cancelled_sync_stops_between_batches_and_the_next_finishes_it(
    tmp_path: Path,
) -> None:
    opened = open_classroom(f"sqlite:///{tmp_path / 'cancel.db'}", secret_box=SecretBox.generate())
    try:
        with district(opened, config=ClassroomConfig(latency_ms=50)) as world:
            expected = sum(len(s) for _, _, s in world.roster().values())
            connection = google_connection_for_sync(world.classroom)
            slow = ClientSettings(max_concurrency=1, batch_size=4)
            outcomes: list[JobOutcome] = []
            with open_google_client(world.classroom, connection, slow) as client:
                running = threading.Thread(
                    target=lambda: outcomes.append(
                        asyncio.run(
                            roster_job.run_google_roster_sync(world.classroom, ADMIN, client=client)
                        )
                    )
                )
                running.start()
                deadline = time.monotonic() + 60
                while _students(world) < 12:
                    assert time.monotonic() < deadline and running.is_alive()
                    time.sleep(0.01)
                job_id = roster_job.history(world.classroom)[0]["job_id"]
                request_cancel(world.classroom, job_id, ADMIN)
                running.join(timeout=60)
            assert outcomes[0].status == JobStatus.CANCELLED
            assert _students(world) < expected
            assert _run(world).status == JobStatus.SUCCEEDED
            classroom_matches_the_sis(world)
    finally:
        opened.close()


def _students(world: World) -> int:
    with world.google.backend.lock:
        return sum(len(r["students"]) for r in world.google.backend.tables["roster"].values())
