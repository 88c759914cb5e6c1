"""A roster sync killed with kill -9 while it writes to Classroom, then run again: no course,
teacher or student twice, Classroom equal to the SIS, and every student sislink placed still
known as sislink's (so the SIS ending their enrolment will still remove them). SQLite and
PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from sislink.classroom import open_classroom
from sislink.classroom.models import GoogleCourseLink, GoogleCourseMember, JobStatus
from sislink.classroom.secrets import SecretBox
from sislink.googleclassroom import ClientSettings
from sislink.googleclassroom.emulator import ClassroomConfig
from sislink.sync.google_roster import google_connection_for_sync, open_google_client
from sync.google_roster_world import (
    ADMIN,
    World,
    classroom_courses,
    classroom_matches_the_sis,
    district,
)

SYNC_IN_A_PROCESS = textwrap.dedent(
    """
    import asyncio, os
    from sislink.classroom import Actor, open_classroom
    from sislink.classroom.secrets import SecretBox
    from sislink.googleclassroom import ClientSettings
    from sislink.jobs.google_roster import run_google_roster_sync
    from sislink.sync.google_roster import google_connection_for_sync, open_google_client

    classroom = open_classroom(
        os.environ["ROSTER_DB"], secret_box=SecretBox(os.environ["ROSTER_KEY"])
    )
    connection = google_connection_for_sync(classroom)
    # One small batch at a time, so that the kill lands in the middle of the writes.
    settings = ClientSettings(max_concurrency=1, batch_size=4)
    with open_google_client(classroom, connection, settings) as client:
        print("started", flush=True)
        asyncio.run(run_google_roster_sync(classroom, Actor.system(), client=client))
    """
)


@pytest.fixture
def key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def slow_world(database_url: str, key: str) -> Iterator[World]:
    opened = open_classroom(database_url, secret_box=SecretBox(key))
    try:
        with district(opened, config=ClassroomConfig(latency_ms=20)) as made:
            yield made
    finally:
        opened.close()


def _students_in_classroom(world: World) -> int:
    with world.google.backend.lock:
        return sum(len(r["students"]) for r in world.google.backend.tables["roster"].values())


def test_a_sync_killed_while_writing_then_run_again_duplicates_nothing(
    slow_world: World, database_url: str, key: str
) -> None:
    world = slow_world
    expected = sum(len(s) for _, _, s in world.roster().values())
    env = dict(os.environ, ROSTER_DB=database_url, ROSTER_KEY=key)
    process = subprocess.Popen(
        [sys.executable, "-c", SYNC_IN_A_PROCESS],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while _students_in_classroom(world) < 40:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "the sync never started adding students"
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    placed = _students_in_classroom(world)
    assert 40 <= placed < expected  # killed part way through the adds

    import asyncio

    from sislink.jobs.google_roster import run_google_roster_sync

    connection = google_connection_for_sync(world.classroom)
    fast = ClientSettings(backoff_base_s=0.01, backoff_cap_s=0.05)
    with open_google_client(world.classroom, connection, fast) as client:
        outcome = asyncio.run(run_google_roster_sync(world.classroom, ADMIN, client=client))
    assert outcome.status == JobStatus.SUCCEEDED, outcome.report
    counts = outcome.report["counts"]
    assert counts["courses"]["created"] == 0  # every course was made before the kill
    assert counts["students"]["created"] == expected - placed

    classroom_matches_the_sis(world)
    courses = classroom_courses(world.google)
    with world.classroom.session() as session:
        rows = session.execute(
            select(GoogleCourseLink.alias, GoogleCourseMember.email_key)
            .join(GoogleCourseMember, GoogleCourseMember.link_id == GoogleCourseLink.id)
            .where(GoogleCourseMember.role == "student")
        ).all()
    recorded: dict[str, set[str]] = {}
    for alias, email in rows:
        recorded.setdefault("d:" + alias, set()).add(email)
    # Every student in Classroom was placed by sislink and is known as such, none twice.
    assert {a: s for a, (_, _, s) in courses.items() if s} == recorded
    assert len(rows) == expected
