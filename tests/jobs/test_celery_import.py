"""A roster import on Celery workers (RabbitMQ and Redis, PostgreSQL, the built-in SIS over
HTTP): the worker running it killed with SIGKILL mid-import, the other worker takes the job over
and finishes it; a full import after it finds nothing to create, change or deactivate (the
classroom holds the SIS's roster exactly, nothing twice, nothing lost)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text

from jobs.test_celery_workers import RABBITMQ, REDIS, environment, holder_pid, workers
from sislink.classroom import Classroom, open_classroom
from sislink.classroom.db import normalise_database_url
from sislink.classroom.models import Job, JobStatus
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.settings import Settings
from sislink.sync.roster_holds import ROSTER_IMPORT
from sync.mark_export_world import connect_classroom

pytestmark = pytest.mark.postgres

POLL_S = 0.02
POLLS = 6000


@pytest.fixture(scope="module")
def sis() -> Iterator[RunningProvider]:
    with running_provider(profile="generic-1.2", students=800, latency_ms=40) as running:
        yield running


@contextlib.contextmanager
def _schema() -> Iterator[str]:
    """A PostgreSQL schema of its own (the workers open it from the environment)."""
    raw = os.environ.get("SISLINK_TEST_POSTGRES_URL")
    if not raw:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("SISLINK_TEST_POSTGRES_URL is not set (CI must run these)")
        pytest.skip("SISLINK_TEST_POSTGRES_URL is not set")
    base = normalise_database_url(raw)
    schema = f"test_celery_import_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        scoped = base.update_query_dict({"options": f"-csearch_path={schema}"})
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@dataclass
class Room:
    classroom: Classroom
    home: Path
    env: dict[str, str]


@pytest.fixture(scope="module", params=["rabbitmq", "redis"])
def room(
    request: pytest.FixtureRequest, sis: RunningProvider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Room]:
    """An empty classroom connected to the SIS, and the workers' environment on each broker."""
    broker = str(request.param)
    home = tmp_path_factory.mktemp(f"celery-import-{broker}")
    with _schema() as database_url:
        opened = open_classroom(Settings.for_home(home, database_url))
        connect_classroom(sis, opened)
        env = environment(home, database_url, RABBITMQ if broker == "rabbitmq" else REDIS)
        env["SISLINK_QUEUE"] += "-import"  # its own queue, whatever else runs
        # Redis gives a dead worker's task to another once its visibility timeout has passed.
        env["SISLINK_BROKER_VISIBILITY_TIMEOUT"] = "5"
        try:
            yield Room(opened, home, env)
        finally:
            opened.close()


def _import(env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sislink.cli", "roster", "import", "--json", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _ended(run: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = run.communicate()
    assert run.returncode in (0, 3), out + err  # 3: finished, with records to look at
    said: dict[str, Any] = json.loads(out)
    return said


def _import_jobs(room: Classroom) -> list[Job]:
    with room.session() as session:
        return list(session.scalars(select(Job).where(Job.kind == ROSTER_IMPORT).order_by(Job.id)))


def test_a_worker_killed_mid_import_leaves_the_job_to_the_other_and_the_roster_exact(
    room: Room,
) -> None:
    env = room.env
    log_dir = room.home / "logs"
    log_dir.mkdir()
    with workers(env, log_dir, 2) as started:
        run = _import(env)
        try:
            job = _mid_import(room.classroom, run)
            (victim,) = [w for w in started if w.pid == holder_pid(job)]
            victim.kill()
            said = _ended(run)
        finally:
            if run.poll() is None:
                run.kill()
        (survivor,) = [w for w in started if w is not victim]
        assert said["job_id"] == job.id
        assert said["job_status"] in ("succeeded", "needs_attention"), said
        (after,) = _import_jobs(room.classroom)
        assert after.id == job.id and holder_pid(after) == survivor.pid
        assert "taking it over here" in survivor.said()

        # A full import now finds the classroom exactly as the SIS has it.
        again = _ended(_import(env, "--full"))

    counts = again["counts"]
    assert sum(c["unchanged"] for c in counts.values()) > 800
    for entity, count in counts.items():
        assert (count["created"], count["updated"], count["deactivated"]) == (0, 0, 0), entity


def _mid_import(room: Classroom, run: subprocess.Popen[str]) -> Job:
    """Wait until the import's job runs on a worker and has read some of the SIS."""
    for _ in range(POLLS):
        assert run.poll() is None, "the import ended before it could be caught mid-run"
        jobs = _import_jobs(room)
        if jobs and jobs[0].status == JobStatus.RUNNING and (jobs[0].progress_done or 0) > 0:
            return jobs[0]
        time.sleep(POLL_S)
    raise AssertionError("the import never got under way")
