"""Jobs on Celery workers (SISLINK_BROKER_URL), all real: `sislink worker` processes on the
Redis and the RabbitMQ of this machine, a PostgreSQL classroom, the built-in SIS over HTTP
(counted: how many requests it has in flight at once), `sislink marks export` handing its job
over. Workers start once for the module; each run has its own queues and Redis keys.

- jobs handed over by the CLI run on the workers (Redis and RabbitMQ), two at once keeping to
  the connection's one allowance (the SIS sees no more than SISLINK_SIS_MAX_CONCURRENCY), held
  in Redis whichever the broker;
- a job of a kind the workers do not know fails (it is not left queued, waited for for ever);
  an export of every class whose broker is down fails, leaving no class's job queued; a task
  taken while the database is away is tried again, and its job runs once the database is back;
- a job cancelled while queued ends cancelled, and the worker that gets its task sends nothing;
  one cancelled while it runs on a worker stops, and the next export sends the rest;
- a worker killed with SIGKILL mid-export: its task goes to the other worker, which takes the
  job over and finishes it; the SIS and the classroom's ledger are exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, make_url, select, text

from sislink.classroom import Actor, open_classroom
from sislink.classroom.db import normalise_database_url
from sislink.classroom.models import Class, ExportRecord, Job, JobStatus
from sislink.jobs import celery_app, runner
from sislink.jobs.fan_out import PARENT_JOB
from sislink.jobs.mark_export import CLASS_EXPORT, all_exports_job, class_export_job, queue_export
from sislink.jobs.runner import ON_WORKERS, request_cancel
from sislink.oneroster.provider import server as provider_server
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.settings import Settings
from sync.mark_export_world import World, build_worlds

pytestmark = pytest.mark.postgres

REDIS = "redis://127.0.0.1:6379/0"
RABBITMQ = "amqp://guest:guest@127.0.0.1:5672//"
RUN = uuid.uuid4().hex[:10]
STUDENTS = 12
SHARED_CONCURRENCY = 3
LATENCY_MS = 30
# Polls (never a time limit on what is tested): how often, and how many before giving up.
POLL_S = 0.05
POLLS = 2400


class CountingSis:
    """Wraps the built-in SIS's app: how many requests it has in flight now, and at most."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.in_flight = 0
        self.peak = 0
        self._lock = threading.Lock()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with self._lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            await self.app(scope, receive, send)
        finally:
            with self._lock:
                self.in_flight -= 1


@dataclass
class Sis:
    running: RunningProvider
    counted: CountingSis


@pytest.fixture(scope="module")
def sis() -> Iterator[Sis]:
    made: list[CountingSis] = []
    real = provider_server.create_app

    def counted_app(store: Any, config: Any) -> Any:
        made.append(CountingSis(real(store, config)))
        return made[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(provider_server, "create_app", counted_app)
        with running_provider(profile="generic-1.2", students=60, latency_ms=LATENCY_MS) as sis:
            yield Sis(sis, made[0])


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    """One PostgreSQL schema for the module (the workers open it once, from the environment)."""
    raw = os.environ.get("SISLINK_TEST_POSTGRES_URL")
    if not raw:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("SISLINK_TEST_POSTGRES_URL is not set (CI must run these)")
        pytest.skip("SISLINK_TEST_POSTGRES_URL is not set")
    base = normalise_database_url(raw)
    schema = f"test_celery_{RUN}"
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
    return tmp_path_factory.mktemp("celery-home")


@pytest.fixture(scope="module")
def worlds(sis: Sis, home: Path, database_url: str) -> Iterator[list[World]]:
    classroom = open_classroom(Settings.for_home(home, database_url))
    built = asyncio.run(
        build_worlds(sis.running, classroom, students=STUDENTS, class_indexes=[0, 1])
    )
    yield built
    classroom.close()


def environment(home: Path, database_url: str, broker: str) -> dict[str, str]:
    kind = broker.split(":", 1)[0]
    return {
        **os.environ,
        "SISLINK_HOME": str(home),
        "SISLINK_DATABASE_URL": database_url,
        "SISLINK_BROKER_URL": broker,
        "SISLINK_QUEUE": f"sislink-test-{RUN}-{kind}",
        "SISLINK_REDIS_URL": REDIS,
        "SISLINK_REDIS_PREFIX": f"sislink-test-{RUN}",
        "SISLINK_SIS_MAX_CONCURRENCY": str(SHARED_CONCURRENCY),
        "SISLINK_JOB_LEASE_SECONDS": "2",
        "PYTHONUNBUFFERED": "1",
    }


class Worker:
    """A `sislink worker` process (with its pool, in a session of its own)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sislink.cli", "worker", "--concurrency", "1", "--pool", "solo"],
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def said(self) -> str:
        return self.log.read_text()

    def wait_ready(self) -> None:
        for _ in range(POLLS):
            if " ready." in self.said():
                return
            assert self.process.poll() is None, self.said()
            time.sleep(POLL_S)
        raise AssertionError("the worker never became ready:\n" + self.said())

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait()
        self._out.close()

    def ask_to_stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.ask_to_stop()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._out.close()


@contextlib.contextmanager
def workers(env: dict[str, str], log_dir: Path, count: int) -> Iterator[list[Worker]]:
    started = [Worker(env, log_dir / f"worker-{n}.log") for n in range(count)]
    try:
        for worker in started:
            worker.wait_ready()
        yield started
    finally:
        for worker in started:  # all at once, then each waited for
            worker.ask_to_stop()
        for worker in started:
            worker.stop()


@pytest.fixture(scope="module")
def redis_env(home: Path, database_url: str) -> dict[str, str]:
    return environment(home, database_url, REDIS)


@pytest.fixture(scope="module")
def rabbitmq_env(home: Path, database_url: str) -> dict[str, str]:
    return environment(home, database_url, RABBITMQ)


@pytest.fixture(scope="module")
def redis_workers(
    worlds: list[World], redis_env: dict[str, str], home: Path
) -> Iterator[list[Worker]]:
    with workers(redis_env, home, 2) as started:
        yield started


@pytest.fixture(scope="module")
def rabbitmq_workers(
    worlds: list[World], rabbitmq_env: dict[str, str], home: Path
) -> Iterator[list[Worker]]:
    log_dir = home / "rabbitmq"
    log_dir.mkdir()
    with workers(rabbitmq_env, log_dir, 2) as started:
        yield started


# Every coursework title exported so far in the module (both classes): the SIS holds exactly these.
EXPORTED: list[str] = []
# Coursework of the first class whose export was cancelled while queued: its next export sends it.
PENDING: list[str] = []


def add_work(world: World, count: int, title: str) -> list[str]:
    titles = [f"{title} {n}" for n in range(count)]
    for n, named in enumerate(titles):
        work = world.add_coursework(named)
        for student in world.students:
            world.mark(work, student, score=n % 10)
    EXPORTED.extend(titles)
    return titles


def export_command(world: World) -> list[str]:
    return [
        sys.executable, "-m", "sislink.cli", "marks", "export",
        "--class", str(world.class_id), "--as", world.teacher_email, "--json",
    ]  # fmt: skip


def export_by_cli(world: World, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        export_command(world),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def ended(export: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = export.communicate()
    assert export.returncode == 0, out + err
    said: dict[str, Any] = json.loads(out)
    return said


def class_jobs(world: World) -> list[Job]:
    with world.classroom.session() as session:
        return list(
            session.scalars(
                select(Job)
                .where(Job.kind == CLASS_EXPORT, Job.class_id == world.class_id)
                .order_by(Job.id)
            )
        )


def holder_pid(job: Job) -> int:
    assert job.lease_holder is not None
    fields = dict(part.partition("=")[::2] for part in job.lease_holder.split(";"))
    return int(fields["pid"])


def assert_sis_exact(world: World) -> None:
    """The SIS holds each coursework exported once, with each student's result once, and the
    classroom's ledger knows exactly the records the SIS holds."""
    store = world.sis.store
    assert sorted(str(li["title"]) for li in store.iter_all("lineItem")) == sorted(EXPORTED)
    pairs = [
        (r["lineItem"]["sourcedId"], r["student"]["sourcedId"]) for r in store.iter_all("result")
    ]
    assert len(set(pairs)) == len(pairs) == len(EXPORTED) * STUDENTS
    in_sis = {str(r["sourcedId"]) for kind in ("lineItem", "result") for r in store.iter_all(kind)}
    with world.classroom.session() as session:
        ledger = {r.sis_sourced_id for r in session.scalars(select(ExportRecord)) if r.content_hash}
    assert ledger == in_sis


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_jobs_handed_over_by_the_cli_run_on_two_workers_at_once_within_one_allowance(
    broker: str, worlds: list[World], sis: Sis, request: pytest.FixtureRequest
) -> None:
    # The allowance is held in Redis whichever the broker (SISLINK_REDIS_URL).
    started: list[Worker] = request.getfixturevalue(f"{broker}_workers")
    env: dict[str, str] = request.getfixturevalue(f"{broker}_env")
    for n, world in enumerate(worlds):
        add_work(world, 5, f"Shared {broker} {n}")
    before = {j.id for world in worlds for j in class_jobs(world)}
    sis.counted.peak = 0

    exports = [export_by_cli(world, env) for world in worlds]
    said = [ended(export) for export in exports]

    first, second = (class_jobs(world)[-1] for world in worlds)
    # Each CLI handed its job over and said how it ended on the worker.
    for job, answer in zip((first, second), said, strict=True):
        assert job.id not in before and answer["job_id"] == job.id
        assert answer["status"] == "succeeded" and answer["writes"] == 5 * (1 + STUDENTS)
        assert job.status == JobStatus.SUCCEEDED and job.params[ON_WORKERS] is True
    # Both workers ran at once (one job each, their runs overlapping)...
    assert {holder_pid(first), holder_pid(second)} == {w.pid for w in started}
    assert first.started_at and first.finished_at and second.started_at and second.finished_at
    assert first.started_at < second.finished_at and second.started_at < first.finished_at
    # ...and the SIS never had more calls in flight than the one allowance (each worker alone
    # would have used all of it).
    assert sis.counted.peak == SHARED_CONCURRENCY
    assert_sis_exact(worlds[0])


def test_an_export_of_every_class_fans_out_one_job_per_class_to_the_workers(
    worlds: list[World], redis_workers: list[Worker], redis_env: dict[str, str]
) -> None:
    for n, world in enumerate(worlds):
        add_work(world, 2, f"All {n}")
    teacher = worlds[0].teacher_email
    command = [sys.executable, "-m", "sislink.cli", "marks", "export", "--all", "--as", teacher]
    export = subprocess.Popen(
        [*command, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=redis_env,
    )  # fmt: skip

    said = ended(export)

    assert said["status"] == "succeeded" and said["writes"] == 2 * 2 * (1 + STUDENTS)
    assert sorted(c["class_id"] for c in said["classes"]) == sorted(w.class_id for w in worlds)
    with worlds[0].classroom.session() as session:
        parent = session.get(Job, said["job_id"])
        assert parent is not None
        children = [session.get(Job, child) for child in parent.report["child_jobs"]]
    # The parent ran in the process that asked (no worker waits on it); each class on a worker.
    assert holder_pid(parent) == export.pid
    assert sorted(c.class_id for c in children if c) == sorted(w.class_id for w in worlds)
    for child in children:
        assert child is not None and child.status == JobStatus.SUCCEEDED
        assert holder_pid(child) in {w.pid for w in redis_workers}
    assert_sis_exact(worlds[0])


def test_the_cli_prints_the_report_of_each_class_a_worker_exported(
    worlds: list[World], redis_workers: list[Worker], redis_env: dict[str, str]
) -> None:
    """Without --json the command says what each class's export did, as when it runs the
    export itself: with the workers it printed nothing at all."""
    for n, world in enumerate(worlds):
        add_work(world, 1, f"Told {n}")
    with worlds[0].classroom.session() as session:
        titles = {w.class_id: session.get(Class, w.class_id).title for w in worlds}  # type: ignore[union-attr]
    teacher = worlds[0].teacher_email
    base = [sys.executable, "-m", "sislink.cli", "marks", "export", "--as", teacher]
    for asked, shown in (
        (["--class", str(worlds[0].class_id)], [worlds[0].class_id]),
        (["--all"], [w.class_id for w in worlds]),
    ):
        export = subprocess.run(
            [*base, *asked], capture_output=True, text=True, env=redis_env, check=False
        )
        assert export.returncode == 0, export.stdout + export.stderr
        said = " ".join(export.stdout.split())
        for class_id in shown:
            assert f"{titles[class_id]}: succeeded, " in said, said
        assert "marks (results): " in said, said
    assert_sis_exact(worlds[0])


def test_an_export_of_every_class_on_the_workers_that_left_a_class_busy_out_exits_1(
    worlds: list[World], redis_workers: list[Worker], redis_env: dict[str, str]
) -> None:
    """A class busy with its own export is refused by the export of every class: exit 1, as
    when the command runs the export itself (README, "Exit status"), not 3."""
    busy, other = worlds
    add_work(other, 1, "Beside a busy class")
    blocking = queue_export(
        busy.classroom, busy.teacher, class_export_job(busy.classroom, busy.teacher, busy.class_id)
    )
    try:
        command = [sys.executable, "-m", "sislink.cli", "marks", "export", "--all"]
        export = subprocess.run(
            [*command, "--as", busy.teacher_email],
            capture_output=True,
            text=True,
            env=redis_env,
            check=False,
        )
    finally:
        request_cancel(busy.classroom, blocking, Actor.system())
    assert export.returncode == 1, export.stdout + export.stderr
    said = " ".join(export.stdout.split())
    with busy.classroom.session() as session:
        title = session.get(Class, busy.class_id).title  # type: ignore[union-attr]
    assert f"{title!r} was not exported: " in said, said
    assert f"job (number {blocking}" in said, said
    assert_sis_exact(other)


def test_a_job_cancelled_while_queued_ends_cancelled_and_its_worker_sends_nothing(
    worlds: list[World],
    sis: Sis,
    redis_workers: list[Worker],
    redis_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = worlds[0]
    titles = add_work(world, 2, "Cancelled")
    for title in titles:
        EXPORTED.remove(title)  # not sent now
        PENDING.append(title)
    job_id = queue_export(
        world.classroom,
        world.teacher,
        class_export_job(world.classroom, world.teacher, world.class_id),
    )
    assert request_cancel(world.classroom, job_id, Actor.system()) == JobStatus.CANCELLED
    for name in ("SISLINK_BROKER_URL", "SISLINK_QUEUE"):
        monkeypatch.setenv(name, redis_env[name])
    celery_app.celery_app.cache_clear()
    try:
        outcome = asyncio.run(celery_app.run_on_workers(world.classroom, job_id))
    finally:
        celery_app.celery_app.cache_clear()

    assert outcome.status == JobStatus.CANCELLED
    for _ in range(POLLS):  # the task reached a worker, which found nothing to do
        if any("'nothing to do'" in w.said() for w in redis_workers):
            break
        time.sleep(POLL_S)
    else:
        raise AssertionError("no worker ended the cancelled job's task")
    (job,) = [j for j in class_jobs(world) if j.id == job_id]
    assert job.status == JobStatus.CANCELLED and job.started_at is None
    assert_sis_exact(world)


def test_an_export_of_every_class_the_broker_does_not_take_leaves_no_class_job_queued(
    worlds: list[World], redis_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    classroom, teacher = worlds[0].classroom, worlds[0].teacher
    with socket.socket() as probe:  # a port nothing listens on: the broker is down
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("SISLINK_BROKER_URL", f"redis://127.0.0.1:{port}/0")
    monkeypatch.setenv("SISLINK_QUEUE", redis_env["SISLINK_QUEUE"])
    celery_app.celery_app.cache_clear()
    try:
        job_id = queue_export(classroom, teacher, all_exports_job(classroom, teacher))
        outcome = asyncio.run(celery_app.run_on_workers(classroom, job_id))
    finally:
        celery_app.celery_app.cache_clear()

    children = [
        j for world in worlds for j in class_jobs(world) if j.params.get(PARENT_JOB) == job_id
    ]
    # None stays queued holding its class's lock (the next tests export both classes).
    assert len(children) == len(worlds)
    assert [
        j.status for j in children if j.status not in (JobStatus.FAILED, JobStatus.CANCELLED)
    ] == []
    assert outcome.status == JobStatus.FAILED
    assert outcome.error and "could not be handed to the workers" in outcome.error


def test_an_export_of_every_class_whose_database_fails_while_handing_over_leaves_no_class_locked(
    worlds: list[World], redis_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database refuses (PostgreSQL restarting) while the parent, in `serve`, hands its
    class jobs to the workers: the parent fails, and no class job is left queued holding its
    class's lock for a process that lives on (every export of those classes refused until
    `serve` restarts)."""
    classroom, teacher = worlds[0].classroom, worlds[0].teacher
    refuse = text(
        "CREATE FUNCTION refuse_hand_over() RETURNS trigger AS $$ BEGIN "
        "RAISE EXCEPTION 'the database is restarting'; END $$ LANGUAGE plpgsql; "
        "CREATE TRIGGER refuse_hand_over BEFORE UPDATE ON job FOR EACH ROW "
        "WHEN (NEW.params::jsonb ? 'on_workers' AND NEW.params::jsonb ? 'parent_job_id') "
        "EXECUTE FUNCTION refuse_hand_over()"
    )
    with classroom.engine.begin() as connection:
        connection.execute(refuse)
    monkeypatch.setenv("SISLINK_BROKER_URL", redis_env["SISLINK_BROKER_URL"])
    monkeypatch.setenv("SISLINK_QUEUE", f"{redis_env['SISLINK_QUEUE']}-nowhere")
    celery_app.celery_app.cache_clear()
    try:
        job_id = queue_export(classroom, teacher, all_exports_job(classroom, teacher))
        outcome = asyncio.run(celery_app.run_on_workers(classroom, job_id))
    finally:
        celery_app.celery_app.cache_clear()
        with classroom.engine.begin() as connection:
            connection.execute(text("DROP TRIGGER refuse_hand_over ON job"))
            connection.execute(text("DROP FUNCTION refuse_hand_over()"))

    assert outcome.status == JobStatus.FAILED
    children = [
        j for world in worlds for j in class_jobs(world) if j.params.get(PARENT_JOB) == job_id
    ]
    assert len(children) == len(worlds)
    assert [
        j.status for j in children if j.status not in (JobStatus.FAILED, JobStatus.CANCELLED)
    ] == []


def test_a_job_of_a_kind_the_workers_do_not_know_fails_instead_of_waiting_for_ever(
    worlds: list[World],
    redis_workers: list[Worker],
    redis_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Queued by a newer sislink than the workers run (say).
    job_id = runner.queue(worlds[0].classroom, kind="kind_of_a_newer_version", actor=Actor.system())
    for name in ("SISLINK_BROKER_URL", "SISLINK_QUEUE"):
        monkeypatch.setenv(name, redis_env[name])
    celery_app.celery_app.cache_clear()
    try:
        # (Before, it stayed queued and this waited for ever: a bound, not a speed limit.)
        outcome = asyncio.run(
            asyncio.wait_for(celery_app.run_on_workers(worlds[0].classroom, job_id), 120)
        )
    finally:
        celery_app.celery_app.cache_clear()

    assert outcome.status == JobStatus.FAILED
    assert outcome.error and "No job kind 'kind_of_a_newer_version' is registered" in outcome.error


class LateDatabase:
    """PostgreSQL through a port of its own that answers only once `open` is called (as a
    database that restarts): a TCP forwarder on this machine."""

    def __init__(self, database_url: str) -> None:
        self.url = make_url(database_url)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, daemon=True).start()
        self._server: asyncio.Server | None = None

    def url_through_it(self) -> str:
        moved = self.url.set(host="127.0.0.1", port=self.port)
        return moved.render_as_string(hide_password=False)

    def open(self) -> None:
        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            writer.close()

        async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            host, port = self.url.host or "127.0.0.1", self.url.port or 5432
            there_reader, there_writer = await asyncio.open_connection(host, port)
            await asyncio.gather(pipe(reader, there_writer), pipe(there_reader, writer))

        async def start() -> None:
            self._server = await asyncio.start_server(forward, "127.0.0.1", self.port)

        asyncio.run_coroutine_threadsafe(start(), self._loop).result()

    def close(self) -> None:
        if self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)


def test_a_task_a_worker_takes_while_the_database_is_away_runs_once_it_is_back(
    worlds: list[World],
    redis_env: dict[str, str],
    database_url: str,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = worlds[0]
    titles = add_work(world, 1, "Database away")
    late = LateDatabase(database_url)
    env = {
        **redis_env,
        "SISLINK_DATABASE_URL": late.url_through_it(),
        "SISLINK_QUEUE": redis_env["SISLINK_QUEUE"] + "-late-database",
    }
    (log_dir := home / "late-database").mkdir()
    for name in ("SISLINK_BROKER_URL", "SISLINK_QUEUE"):
        monkeypatch.setenv(name, env[name])
    celery_app.celery_app.cache_clear()
    try:
        with workers(env, log_dir, 1) as (worker,):
            job_id = queue_export(
                world.classroom,
                world.teacher,
                class_export_job(world.classroom, world.teacher, world.class_id),
            )
            asyncio.run(celery_app.hand_over(world.classroom, job_id))
            for _ in range(POLLS):  # the worker took the task and could not reach the database
                if "database could not be reached" in worker.said() or "raised" in worker.said():
                    break
                time.sleep(POLL_S)
            else:
                raise AssertionError("the worker never took the task:\n" + worker.said())
            late.open()
            # (Before, the task was dropped and this waited for ever: a bound, not a speed limit.)
            (outcome,) = asyncio.run(
                asyncio.wait_for(celery_app.wait_for_end(world.classroom, [job_id]), 120)
            )
    finally:
        celery_app.celery_app.cache_clear()
        late.close()

    assert outcome.status == JobStatus.SUCCEEDED, outcome
    # This coursework, and any a cancelled export left to the next one.
    assert outcome.report["writes"] == (len(titles) + len(PENDING)) * (1 + STUDENTS)
    EXPORTED.extend(PENDING)
    PENDING.clear()
    assert_sis_exact(world)


def mid_export(world: World, sis: Sis, before: set[int], results_before: int) -> Job:
    """Wait until a new export job of the class runs and the SIS has some of its results."""
    for _ in range(POLLS):
        running = [
            j for j in class_jobs(world) if j.id not in before and j.status == JobStatus.RUNNING
        ]
        if running and sis.running.store.count("result") >= results_before + 2 * STUDENTS:
            return running[0]
        time.sleep(POLL_S)
    raise AssertionError("the export never got under way")


def test_a_job_cancelled_while_it_runs_on_a_worker_stops_and_the_next_export_finishes_it(
    worlds: list[World], sis: Sis, redis_workers: list[Worker], redis_env: dict[str, str]
) -> None:
    world = worlds[0]
    add_work(world, 8, "Stopped")
    before = {j.id for j in class_jobs(world)}
    results_before = sis.running.store.count("result")
    export = export_by_cli(world, redis_env)
    try:
        job = mid_export(world, sis, before, results_before)
        assert request_cancel(world.classroom, job.id, Actor.system()) == JobStatus.RUNNING
        out, err = export.communicate()
    finally:
        if export.poll() is None:
            export.kill()

    assert export.returncode == 1, out + err
    said = json.loads(out)
    assert said["job_id"] == job.id and said["status"] == "cancelled" and said["stopped"]
    (stopped,) = [j for j in class_jobs(world) if j.id == job.id]
    assert stopped.status == JobStatus.CANCELLED
    assert holder_pid(stopped) in {w.pid for w in redis_workers}
    assert sis.running.store.count("result") - results_before < 8 * STUDENTS
    # What was sent stays in the ledger: the next export sends the rest, and the SIS is exact.
    assert ended(export_by_cli(world, redis_env))["status"] == "succeeded"
    EXPORTED.extend(PENDING)
    assert_sis_exact(world)


def test_a_worker_killed_mid_export_leaves_the_job_to_the_other_and_the_sis_exact(
    worlds: list[World], sis: Sis, rabbitmq_workers: list[Worker], rabbitmq_env: dict[str, str]
) -> None:
    world = worlds[1]
    add_work(world, 12, "Killed")
    before = {j.id for j in class_jobs(world)}
    results_before = sis.running.store.count("result")
    export = export_by_cli(world, rabbitmq_env)
    try:
        job = mid_export(world, sis, before, results_before)
        (victim,) = [w for w in rabbitmq_workers if w.pid == holder_pid(job)]
        victim.kill()
        sent = sis.running.store.count("result") - results_before
        assert 0 < sent < 12 * STUDENTS  # killed mid-export

        said = ended(export)
    finally:
        if export.poll() is None:
            export.kill()

    (survivor,) = [w for w in rabbitmq_workers if w is not victim]
    assert said["job_id"] == job.id and said["status"] == "succeeded", said
    (after,) = [j for j in class_jobs(world) if j.id == job.id]
    assert holder_pid(after) == survivor.pid
    assert "taking it over here" in survivor.said()
    assert_sis_exact(world)
