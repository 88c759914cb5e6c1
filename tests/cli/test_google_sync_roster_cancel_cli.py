"""`sislink google sync roster` whose job is cancelled (in the console) while it writes to
Google Classroom: the command says so and exits 1, as a cron job must notice. Against the
built-in SIS and the local Classroom, its answers held back while the cancel lands."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from held_answers import HeldAnswers
from sislink.classroom import Actor, open_classroom
from sislink.classroom.models import Job, JobStatus
from sislink.googleclassroom.emulator import server as emulator_server
from sislink.jobs.runner import CANCEL_POLL_S, request_cancel
from sislink.settings import Settings
from sislink.sync.google_roster import GOOGLE_ROSTER_SYNC
from sync.google_roster_world import district

POLL_S = 0.02
POLLS = 3000


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[HeldAnswers]]:
    made: list[HeldAnswers] = []
    real = emulator_server.create_app

    def held_app(classroom: Any) -> Any:
        made.append(HeldAnswers(real(classroom)))
        return made[-1]

    monkeypatch.setattr(emulator_server, "create_app", held_app)
    yield made


def _running_sync(classroom: Any) -> int | None:
    with classroom.session() as session:
        return session.scalar(
            select(Job.id).where(Job.kind == GOOGLE_ROSTER_SYNC, Job.status == JobStatus.RUNNING)
        )


def test_a_sync_cancelled_while_it_writes_to_classroom_exits_1_saying_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, held: list[HeldAnswers]
) -> None:
    monkeypatch.setenv("SISLINK_HOME", str(tmp_path))
    monkeypatch.delenv("SISLINK_DATABASE_URL", raising=False)
    monkeypatch.delenv("SISLINK_BROKER_URL", raising=False)
    classroom = open_classroom(Settings.from_env())
    try:
        with district(classroom):
            answers = held[-1]
            answers.hold()
            process = subprocess.Popen(
                [sys.executable, "-m", "sislink.cli", "google", "sync", "roster"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "SISLINK_HOME": str(tmp_path)},
            )
            try:
                for _ in range(POLLS):
                    job_id = _running_sync(classroom)
                    if (job_id is not None and answers.waiting) or process.poll() is not None:
                        break
                    time.sleep(POLL_S)
                assert job_id is not None and answers.waiting, "the sync never asked Classroom"
                began = time.monotonic()
                request_cancel(classroom, job_id, Actor.system())
                # Held past the job's next look at its cancel flag.
                time.sleep(max(0.0, CANCEL_POLL_S + 0.1 - (time.monotonic() - began)))
            finally:
                answers.release()
            out, err = process.communicate()
    finally:
        classroom.close()

    assert process.returncode == 1, out + err
    said = " ".join(err.split())
    assert f"The roster sync (job {job_id}) was cancelled before it finished" in said
    assert "the next sync finishes it" in said
