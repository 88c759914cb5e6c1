"""Jobs on Celery workers when things go wrong around them, all real: two `sislink worker`
processes on this machine's Redis, a PostgreSQL classroom of four linked classes, the built-in
SIS over HTTP. Workers start once for the module (a short grace and lease, so that a lost task
is looked for within seconds).

- a task the broker lost (deleted from the queue, as a Redis restarted without its data) is
  sent again by a worker's watch, and the job is done;
- a task delivered three times (sent again, redelivered) runs its job once;
- cancelling an export of every class, and disconnecting the SIS, stop its class jobs on the
  workers: those still queued never start, those running stop at their next write; the SIS
  holds each write sent once (that the next export sends the rest of a stopped class is
  test_celery_workers.py's);
- a worker killed with SIGKILL mid-export on Redis (RabbitMQ: test_celery_workers.py): the
  other worker takes the job over and finishes it, the SIS exact.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, select, text

from jobs.test_celery_workers import REDIS, Worker, environment, holder_pid, workers
from sislink.classroom import Actor, open_classroom
from sislink.classroom.db import normalise_database_url
from sislink.classroom.models import ExportRecord, Job, JobStatus
from sislink.jobs import celery_app
from sislink.jobs.fan_out import PARENT_JOB
from sislink.jobs.mark_export import ALL_EXPORT, CLASS_EXPORT, class_export_job, queue_export
from sislink.jobs.runner import request_cancel
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.settings import Settings
from sislink.sync import connection as sis_connection
from sync.mark_export_world import World, build_worlds

pytestmark = pytest.mark.postgres

RUN = uuid.uuid4().hex[:10]
STUDENTS = 6
CLASSES = 4
POLL_S = 0.05
WORK = 16  # coursework per class in the stopped exports
POLLS = 2400  # polls, never a time limit on what is tested


@pytest.fixture(scope="module")
def sis() -> Iterator[RunningProvider]:
    with running_provider(profile="generic-1.2", students=60, latency_ms=60) as running:
        yield running


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    raw = os.environ.get("SISLINK_TEST_POSTGRES_URL")
    if not raw:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("SISLINK_TEST_POSTGRES_URL is not set (CI must run these)")
        pytest.skip("SISLINK_TEST_POSTGRES_URL is not set")
    base = normalise_database_url(raw)
    schema = f"test_celery_lost_{RUN}"
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


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("celery-lost-home")


@pytest.fixture(scope="module")
def worlds(sis: RunningProvider, home: Path, database_url: str) -> Iterator[list[World]]:
    classroom = open_classroom(Settings.for_home(home, database_url))
    built = asyncio.run(
        build_worlds(sis, classroom, students=STUDENTS, class_indexes=list(range(CLASSES)))
    )
    yield built
    classroom.close()


@pytest.fixture(scope="module")
def env(home: Path, database_url: str) -> dict[str, str]:
    made = environment(home, database_url, REDIS)
    made["SISLINK_QUEUE"] += f"-{RUN}-lost"
    made["SISLINK_SIS_MAX_CONCURRENCY"] = "2"
    # A lost task is looked for after 3 s; Redis gives a dead worker's task to another after 5.
    made["SISLINK_REDELIVERY_GRACE_SECONDS"] = "3"
    made["SISLINK_BROKER_VISIBILITY_TIMEOUT"] = "5"
    return made


@pytest.fixture(scope="module")
def started(worlds: list[World], env: dict[str, str], home: Path) -> Iterator[list[Worker]]:
    with workers(env, home, 2) as running:
        yield running


@pytest.fixture
def as_sender(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process hands jobs over as `serve` would, to the workers' broker and queue."""
    for name in ("SISLINK_BROKER_URL", "SISLINK_QUEUE", "SISLINK_REDELIVERY_GRACE_SECONDS"):
        monkeypatch.setenv(name, env[name])
    celery_app.celery_app.cache_clear()
    yield
    celery_app.celery_app.cache_clear()


# Every coursework title made in the module, by class: the SIS ends up with each exactly once.
MADE: dict[int, list[str]] = {}


def add_work(world: World, count: int, title: str) -> None:
    for n in range(count):
        named = f"{title} {n}"
        work = world.add_coursework(named)
        for student in world.students:
            world.mark(work, student, score=n % 10)
        MADE.setdefault(world.class_id, []).append(named)


def sis_results(world: World) -> int:
    return world.sis.store.count("result")


def assert_sent_once(world: World) -> None:
    """Whatever the SIS holds it holds once (no lineItem title twice, no student's result twice
    for a lineItem), and the classroom's ledger knows exactly the records the SIS holds."""
    store = world.sis.store
    titles = [str(li["title"]) for li in store.iter_all("lineItem")]
    assert len(set(titles)) == len(titles)
    pairs = [
        (r["lineItem"]["sourcedId"], r["student"]["sourcedId"]) for r in store.iter_all("result")
    ]
    assert len(set(pairs)) == len(pairs)
    in_sis = {str(r["sourcedId"]) for kind in ("lineItem", "result") for r in store.iter_all(kind)}
    with world.classroom.session() as session:
        ledger = {r.sis_sourced_id for r in session.scalars(select(ExportRecord)) if r.content_hash}
    assert ledger == in_sis


def assert_sis_exact(world: World) -> None:
    """Every coursework made in the module for the world's class is in the SIS once, with each
    student's result once."""
    assert_sent_once(world)
    store = world.sis.store
    mine = {
        str(li["sourcedId"]): str(li["title"])
        for li in store.iter_all("lineItem")
        if li["class"]["sourcedId"] == world.sis_class_id
    }
    assert sorted(mine.values()) == sorted(MADE.get(world.class_id, []))
    results = [r for r in store.iter_all("result") if r["lineItem"]["sourcedId"] in mine]
    assert len(results) == len(mine) * STUDENTS


def job_of(world: World, job_id: int) -> Job:
    with world.classroom.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
        return job


def starts_of(job_id: int, running: list[Worker]) -> int:
    """How many times a worker started the job (its log line)."""
    started = re.compile(rf"job {job_id} \({CLASS_EXPORT}\) started")
    return sum(len(started.findall(worker.said())) for worker in running)


def test_a_task_the_broker_lost_is_sent_again_and_its_job_done(
    worlds: list[World],
    started: list[Worker],
    env: dict[str, str],
    as_sender: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = worlds[0]
    add_work(world, 2, "Lost")
    job_id = queue_export(
        world.classroom,
        world.teacher,
        class_export_job(world.classroom, world.teacher, world.class_id),
    )
    # Its task goes to the broker, which loses it before any worker takes it (as Redis
    # restarted without its data: here it is put where no worker reads, and deleted there).
    nowhere = env["SISLINK_QUEUE"] + "-nowhere"
    monkeypatch.setenv("SISLINK_QUEUE", nowhere)
    asyncio.run(celery_app.hand_over(world.classroom, job_id))
    broker = redis.Redis.from_url(REDIS)
    try:
        assert broker.llen(nowhere) == 1
        broker.delete(nowhere)
    finally:
        broker.close()
    monkeypatch.setenv("SISLINK_QUEUE", env["SISLINK_QUEUE"])
    assert job_of(world, job_id).status == JobStatus.QUEUED

    # (Before, it stayed queued and this waited for ever: a bound, not a speed limit.)
    (outcome,) = asyncio.run(
        asyncio.wait_for(celery_app.wait_for_end(world.classroom, [job_id]), 120)
    )

    assert outcome.status == JobStatus.SUCCEEDED, outcome
    assert outcome.report["writes"] == 2 * (1 + STUDENTS)
    # Once; twice on a loaded machine, when the worker that took the task (no longer in the
    # queue) had not started its job within the 3 s grace: its job still runs once (below).
    assert job_of(world, job_id).params[celery_app.RESENT] in (1, 2)
    assert any(f"job {job_id}: its task was lost by the broker" in w.said() for w in started), (
        "no worker said it sent the task again"
    )
    assert starts_of(job_id, started) == 1
    assert_sis_exact(world)


def test_a_task_delivered_three_times_runs_its_job_once(
    worlds: list[World], started: list[Worker], as_sender: None
) -> None:
    world = worlds[1]
    add_work(world, 6, "Thrice")
    job_id = queue_export(
        world.classroom,
        world.teacher,
        class_export_job(world.classroom, world.teacher, world.class_id),
    )
    asyncio.run(celery_app.hand_over(world.classroom, job_id))
    celery_app.send_job(job_id)  # as the watch for lost tasks would, and a redelivery
    celery_app.send_job(job_id)

    (outcome,) = asyncio.run(
        asyncio.wait_for(celery_app.wait_for_end(world.classroom, [job_id]), 120)
    )
    for _ in range(POLLS):  # the two other deliveries reach a worker, which does nothing
        said = "".join(w.said() for w in started)
        if said.count("'nothing to do'") >= 2:
            break
        time.sleep(POLL_S)
    else:
        raise AssertionError("the other deliveries never reached a worker")

    assert outcome.status == JobStatus.SUCCEEDED, outcome
    assert outcome.report["writes"] == 6 * (1 + STUDENTS)
    assert starts_of(job_id, started) == 1
    assert_sis_exact(world)


def test_a_worker_killed_mid_export_on_redis_leaves_the_job_to_the_other_and_the_sis_exact(
    worlds: list[World], started: list[Worker], env: dict[str, str]
) -> None:
    world = worlds[1]
    add_work(world, 12, "Killed")
    before = sis_results(world)
    export = subprocess.Popen(
        [
            sys.executable, "-m", "sislink.cli", "marks", "export", "--class",
            str(world.class_id), "--as", world.teacher_email, "--json",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        for _ in range(POLLS):
            with world.classroom.session() as session:
                job = session.scalars(
                    select(Job).where(Job.kind == CLASS_EXPORT).order_by(Job.id.desc())
                ).first()
                if job is not None:
                    session.expunge(job)
            if (
                job is not None
                and job.status == JobStatus.RUNNING
                and sis_results(world) >= before + 2 * STUDENTS
            ):
                break
            time.sleep(POLL_S)
        else:
            raise AssertionError("the export never got under way")
        (victim,) = [w for w in started if w.pid == holder_pid(job)]
        victim.kill()
        assert 0 < sis_results(world) - before < 12 * STUDENTS  # killed mid-export
        out, err = export.communicate()
    finally:
        if export.poll() is None:
            export.kill()

    assert export.returncode == 0, out + err
    said = json.loads(out)
    (survivor,) = [w for w in started if w is not victim]
    assert said["job_id"] == job.id and said["status"] == "succeeded", said
    assert holder_pid(job_of(world, job.id)) == survivor.pid
    assert "taking it over here" in survivor.said()
    assert_sis_exact(world)
    # The module's later tests run on two workers again.
    replacement = Worker(env, victim.log.with_name(victim.log.stem + "-replacement.log"))
    started[started.index(victim)] = replacement
    replacement.wait_ready()


def export_all(world: World, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable, "-m", "sislink.cli", "marks", "export", "--all",
            "--as", world.teacher_email, "--json",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def children_of(world: World, parent_id: int) -> list[Job]:
    with world.classroom.session() as session:
        found = [
            job
            for job in session.scalars(select(Job).where(Job.kind == CLASS_EXPORT).order_by(Job.id))
            if (job.params or {}).get(PARENT_JOB) == parent_id
        ]
        session.expunge_all()
        return found


def two_running_two_queued(world: World, export: subprocess.Popen[str], before: int) -> int:
    """Wait until the export of every class runs two class jobs on the workers, has sent some
    of their writes, and has two still queued; its parent job's id."""
    for _ in range(POLLS):
        assert export.poll() is None, "the export ended before it could be stopped"
        with world.classroom.session() as session:
            parent = session.scalars(
                select(Job.id).where(Job.kind == ALL_EXPORT).order_by(Job.id.desc())
            ).first()
        if parent is not None:
            children = children_of(world, parent)
            statuses = sorted(str(job.status) for job in children)
            if (
                statuses == ["queued", "queued", "running", "running"]
                and sis_results(world) >= before + 2 * STUDENTS
            ):
                return parent
        time.sleep(POLL_S)
    raise AssertionError("the export of every class never had two classes running, two queued")


@pytest.mark.parametrize("how", ["cancel", "disconnect"])
def test_stopping_an_export_of_every_class_stops_its_class_jobs_on_the_workers(
    how: str, worlds: list[World], started: list[Worker], env: dict[str, str]
) -> None:
    for n, world in enumerate(worlds):
        add_work(world, WORK, f"Stopped by {how} {n}")
    world = worlds[0]
    before = sis_results(world)
    export = export_all(world, env)
    try:
        parent_id = two_running_two_queued(world, export, before)
        if how == "cancel":
            assert request_cancel(world.classroom, parent_id, Actor.system()) == JobStatus.RUNNING
        else:
            sis_connection.disconnect(world.classroom, Actor.system())
        out, err = export.communicate()
    finally:
        if export.poll() is None:
            export.kill()

    assert export.returncode == 1, out + err
    said = json.loads(out)
    assert said["job_id"] == parent_id and said["status"] == "cancelled", said
    children = children_of(world, parent_id)
    assert [job.status for job in children] == [JobStatus.CANCELLED] * CLASSES
    ran = [job for job in children if job.started_at is not None]
    never = [job for job in children if job.started_at is None]
    # The two that were running stopped on their workers; the two queued never started.
    assert len(ran) == 2 and len(never) == 2
    assert {holder_pid(job) for job in ran} <= {w.pid for w in started}
    for job in never:
        assert starts_of(job.id, started) == 0
    # Stopped part way: not every class's writes were sent; what was, was sent once.
    assert sis_results(world) - before < CLASSES * WORK * STUDENTS
    assert_sent_once(world)
