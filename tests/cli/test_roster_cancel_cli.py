"""`sislink roster import` whose job is cancelled while it reads the SIS (from the console, or
by a disconnect): the command says so and exits 1, as a cron job must notice; nothing of the
import was applied. Against the built-in SIS, its answers held back while the cancel lands."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from held_answers import HeldAnswers
from sislink.classroom import Actor, Classroom, open_classroom
from sislink.classroom.models import Job, JobStatus, Person
from sislink.classroom.services import connections
from sislink.jobs.runner import CANCEL_POLL_S, request_cancel
from sislink.oneroster.provider import server as provider_server
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.settings import Settings
from sislink.sync.roster_holds import ROSTER_IMPORT

POLL_S = 0.02
POLLS = 3000


@pytest.fixture
def sis(tmp_path: Path) -> Iterator[tuple[RunningProvider, HeldAnswers, Classroom, Path]]:
    made: list[HeldAnswers] = []
    real = provider_server.create_app

    def held_app(store: Any, config: Any) -> Any:
        made.append(HeldAnswers(real(store, config)))
        return made[-1]

    home = tmp_path / "home"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(provider_server, "create_app", held_app)
        patch.setenv("SISLINK_HOME", str(home))
        patch.delenv("SISLINK_DATABASE_URL", raising=False)
        patch.delenv("SISLINK_SECRET_KEY", raising=False)
        patch.delenv("SISLINK_BROKER_URL", raising=False)
        with running_provider(students=40) as running:
            classroom = open_classroom(Settings.from_env())
            with classroom.transaction() as session:
                saved = connections.save_connection(
                    session,
                    Actor.system(),
                    classroom.secret_box,
                    partner=running.profile,
                    version=running.version,
                    host_url=running.host_url,
                    access_key=running.client_id,
                    secret_code=running.client_secret,
                    token_url=running.token_url,
                )
                connections.mark_authorised(
                    session, Actor.system(), saved.id, district_sourced_id="d"
                )
            try:
                yield running, made[-1], classroom, home
            finally:
                classroom.close()


def _running_import(classroom: Classroom) -> int | None:
    with classroom.session() as session:
        return session.scalar(
            select(Job.id).where(Job.kind == ROSTER_IMPORT, Job.status == JobStatus.RUNNING)
        )


@pytest.mark.parametrize("as_json", [False, True])
def test_an_import_cancelled_while_it_reads_the_sis_exits_1_saying_so(
    as_json: bool, sis: tuple[RunningProvider, HeldAnswers, Classroom, Path]
) -> None:
    _, answers, classroom, home = sis
    answers.hold()
    command = [sys.executable, "-m", "sislink.cli", "roster", "import", "--full"]
    process = subprocess.Popen(
        command + (["--json"] if as_json else []),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "SISLINK_HOME": str(home)},
    )
    try:
        for _ in range(POLLS):
            job_id = _running_import(classroom)
            if (job_id is not None and answers.waiting) or process.poll() is not None:
                break
            time.sleep(POLL_S)
        assert job_id is not None and answers.waiting, "the import never asked the SIS"
        began = time.monotonic()
        request_cancel(classroom, job_id, Actor.system())
        # Held past the job's next look at its cancel flag.
        time.sleep(max(0.0, CANCEL_POLL_S + 0.1 - (time.monotonic() - began)))
    finally:
        answers.release()
    out, err = process.communicate()

    assert process.returncode == 1, out + err
    said = " ".join(err.split())
    assert f"The roster import (job {job_id}) was cancelled before it finished" in said
    assert "nothing of it was applied" in said
    with classroom.session() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.status == JobStatus.CANCELLED
        assert session.scalar(select(func.count()).select_from(Person)) == 0
