"""A scheduled roster import is followed by the roster sync into Google Classroom when sislink is
connected to it (the same job as the page's button); without Google, only the import runs."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sislink.classroom import open_classroom
from sislink.classroom.secrets import SecretBox
from sislink.classroom.services.jobs import recent_jobs
from sislink.jobs import schedule
from sislink.jobs.runner import JobStatus
from sislink.sync import google_connection
from sync.google_roster_world import ADMIN, classroom_matches_the_sis, district


def test_a_scheduled_import_then_syncs_the_roster_into_classroom(tmp_path: Path) -> None:
    classroom = open_classroom(
        f"sqlite:///{tmp_path / 'schedule.db'}", secret_box=SecretBox.generate()
    )
    try:
        with district(classroom) as world:
            outcome = asyncio.run(schedule._default_import(classroom))
            assert outcome.succeeded
            classroom_matches_the_sis(world)
            with classroom.session() as session:
                synced = recent_jobs(session, kind="google_roster_sync", limit=5)
                assert [j.status for j in synced] == [JobStatus.SUCCEEDED]

            google_connection.disconnect(classroom, ADMIN)
            assert asyncio.run(schedule._default_import(classroom)).succeeded
            with classroom.session() as session:
                assert len(recent_jobs(session, kind="google_roster_sync", limit=5)) == 1
    finally:
        classroom.close()
