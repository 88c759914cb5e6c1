"""Handing jobs to the Celery workers and taking deliveries (jobs/celery_app.py), where no
worker process is needed: a broker that does not answer, two deliveries of one task at once
(PostgreSQL), and the takeover's compare and set on a lease renewed just before it."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy import update as sqlalchemy_update

from sislink.classroom import Actor, Classroom, open_classroom
from sislink.classroom.models import Job, JobStatus
from sislink.classroom.secrets import SecretBox
from sislink.classroom.services import jobs as job_service
from sislink.jobs import celery_app, runner
from sislink.jobs.runner import (
    JOB_KINDS,
    ON_WORKERS,
    SENT_AT,
    JobContext,
    left_to_workers,
    queue,
    run_job,
)

POLL_S = 0.02
POLLS = 3000
# The backends waiting behind `me`, directly or behind another that waits.
BEHIND = text(
    "WITH RECURSIVE behind(pid) AS ("
    " SELECT pid FROM pg_stat_activity WHERE CAST(:me AS integer) = ANY(pg_blocking_pids(pid))"
    " UNION SELECT a.pid FROM pg_stat_activity a JOIN behind b"
    " ON b.pid = ANY(pg_blocking_pids(a.pid))"
    ") SELECT count(*) FROM behind"
)


@pytest.fixture
def sqlite_classroom(tmp_path: Path) -> Iterator[Classroom]:
    opened = open_classroom(
        f"sqlite:///{tmp_path / 'classroom.db'}", secret_box=SecretBox.generate()
    )
    try:
        yield opened
    finally:
        opened.close()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _nothing(context: JobContext) -> Mapping[str, Any]:
    return {}


def test_a_job_the_broker_does_not_take_fails_gives_back_its_lock_and_hides_the_password(
    sqlite_classroom: Classroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SISLINK_BROKER_URL", f"redis://:broker-pw-9f3@127.0.0.1:{_closed_port()}/0")
    celery_app.celery_app.cache_clear()
    try:
        outcome = asyncio.run(
            run_job(
                sqlite_classroom, kind="dispatch_test", actor=Actor.system(), work=_nothing,
                lock_key="dispatch:1",
            )
        )  # fmt: skip
    finally:
        celery_app.celery_app.cache_clear()

    assert outcome.status == JobStatus.FAILED
    assert outcome.error is not None and "could not be handed to the workers" in outcome.error
    assert "redis://127.0.0.1:" in outcome.error and "broker-pw-9f3" not in outcome.error
    # Not left queued holding its lock: the next job for the same thing is taken.
    monkeypatch.delenv("SISLINK_BROKER_URL")
    again = asyncio.run(
        run_job(
            sqlite_classroom, kind="dispatch_test", actor=Actor.system(), work=_nothing,
            lock_key="dispatch:1",
        )
    )  # fmt: skip
    assert again.status == JobStatus.SUCCEEDED


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.postgres
def test_two_deliveries_of_one_queued_job_start_it_once(
    classroom: Classroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[int] = []

    async def counted(context: JobContext) -> Mapping[str, Any]:
        runs.append(context.job_id)
        await asyncio.sleep(0.2)
        return {}

    monkeypatch.setitem(JOB_KINDS, "dispatch_twice", counted)
    job_id = queue(classroom, kind="dispatch_twice", actor=Actor.system())
    answers: list[str] = []

    def deliver() -> None:
        try:
            outcome = asyncio.run(celery_app.run_delivered(classroom, job_id))
            answers.append(str(outcome.status) if outcome else "nothing to do")
        except celery_app.StillRunning:
            answers.append("still running")
        except BaseException as failed:  # said in the assertion below, not lost in a thread
            answers.append(repr(failed))
            raise

    with classroom.engine.connect() as blocker:
        # Both deliveries reach the job's start while another transaction holds its row, so
        # that they go on at the same moment.
        blocker.execute(text("SELECT id FROM job WHERE id = :id FOR UPDATE"), {"id": job_id})
        me = blocker.scalar(text("SELECT pg_backend_pid()"))
        threads = [threading.Thread(target=deliver) for _ in range(2)]
        for thread in threads:
            thread.start()
        with classroom.engine.connect() as watcher:
            for _ in range(POLLS):
                waiting = watcher.scalar(BEHIND, {"me": me})
                watcher.rollback()  # pg_stat_activity is read once per transaction
                if waiting == 2:
                    break
                time.sleep(POLL_S)
            else:
                raise AssertionError(f"the two deliveries never reached the job's start: {answers}")
        blocker.rollback()
    for thread in threads:
        thread.join()

    assert runs == [job_id]
    assert sorted(answers) == ["still running", "succeeded"]


def test_a_late_worker_that_renewed_its_lease_keeps_its_job_from_a_takeover(
    sqlite_classroom: Classroom,
) -> None:
    job_id = queue(sqlite_classroom, kind="dispatch_test", actor=Actor.system())
    elsewhere = "host=other-machine;pid=4242;start=1;machine=another-boot"
    with sqlite_classroom.transaction() as session:
        job = job_service.start_job(session, job_id)
        now = job_service.database_now(session)
        job.lease_holder = elsewhere
        job.lease_expires_at = now - timedelta(seconds=1)  # late: it looks gone
    with sqlite_classroom.session() as session:
        seen = session.get(Job, job_id)
        assert seen is not None and job_service.holder_gone(seen, now) is not None
        session.expunge(seen)
    # Meanwhile the late worker's heartbeat renews its lease...
    holder = job_service.ProcessIdentity.parse(elsewhere)
    assert holder is not None
    with sqlite_classroom.transaction() as session:
        assert job_service.renew_lease(session, job_id, holder)
    # ...so the takeover decided on the lease as read does not happen.
    with sqlite_classroom.transaction() as session:
        taken = celery_app._take_over(session, seen, job_service.database_now(session), 1)
    assert not taken
    with sqlite_classroom.session() as session:
        after = session.get(Job, job_id)
        assert after is not None
        assert (after.status, after.lease_holder) == (JobStatus.RUNNING, elsewhere)


def _running_for_a_dead_worker(classroom: Classroom, job_id: int, taken_over: int) -> None:
    """Mark the job running for a worker process of this machine that has died."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    here = job_service.this_process()
    with classroom.transaction() as session:
        job = job_service.start_job(session, job_id)
        job.lease_holder = job_service.ProcessIdentity(
            here.host, dead.pid, "1", here.machine
        ).token()
        job.params = {ON_WORKERS: True, celery_app.TAKEN_OVER: taken_over}


def test_a_job_whose_worker_died_once_more_after_three_takeovers_is_failed_not_run_again(
    sqlite_classroom: Classroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[int] = []

    async def counted(context: JobContext) -> Mapping[str, Any]:
        runs.append(context.job_id)
        return {}

    monkeypatch.setitem(JOB_KINDS, "dispatch_counted", counted)
    taken_once = queue(
        sqlite_classroom, kind="dispatch_counted", actor=Actor.system(), lock_key="dispatch:2"
    )
    _running_for_a_dead_worker(sqlite_classroom, taken_once, taken_over=0)
    # Say it killed its worker each time (too big for its memory): a fourth death is the last.
    killer = queue(
        sqlite_classroom, kind="dispatch_counted", actor=Actor.system(), lock_key="dispatch:3"
    )
    _running_for_a_dead_worker(sqlite_classroom, killer, taken_over=3)

    first = asyncio.run(celery_app.run_delivered(sqlite_classroom, taken_once))
    last = asyncio.run(celery_app.run_delivered(sqlite_classroom, killer))

    assert first is not None and first.status == JobStatus.SUCCEEDED and runs == [taken_once]
    assert last is None  # not run
    with sqlite_classroom.session() as session:
        taken = session.get(Job, taken_once)
        assert taken is not None and taken.params[celery_app.TAKEN_OVER] == 1
        given_up = session.get(Job, killer)
        assert given_up is not None and given_up.status == JobStatus.FAILED
        assert "stopped with the worker running it 4 times" in given_up.report["error"]
        assert job_service.find_unfinished(session, "dispatch:3") is None  # its lock is free


REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture
def lost_queue(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """sislink's settings for a Redis broker and a queue of this test's own, which no worker
    reads; the Redis client, to see and lose what is in it."""
    import redis

    queue_name = f"sislink-test-lost-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("SISLINK_BROKER_URL", REDIS)
    monkeypatch.setenv("SISLINK_QUEUE", queue_name)
    monkeypatch.setenv("SISLINK_REDELIVERY_GRACE_SECONDS", "60")
    celery_app.celery_app.cache_clear()
    client = redis.Redis.from_url(REDIS)
    try:
        yield client
    finally:
        client.delete(queue_name)
        client.close()
        celery_app.celery_app.cache_clear()


def _sent_minutes_ago(classroom: Classroom, job_id: int, minutes: int, **more: Any) -> None:
    with classroom.transaction() as session:
        job = session.get(Job, job_id)
        assert job is not None
        when = job_service.database_now(session) - timedelta(minutes=minutes)
        job.params = {**job.params, SENT_AT: when.isoformat(), **more}
        if job.status == JobStatus.RUNNING:
            job.heartbeat_at = when


def test_a_task_the_broker_lost_is_sent_again_once_and_only_when_none_waits(
    sqlite_classroom: Classroom, lost_queue: Any
) -> None:
    queue_name = celery_app.queue_name()
    job_id = queue(sqlite_classroom, kind="dispatch_test", actor=Actor.system(), lock_key="d:4")
    asyncio.run(celery_app.hand_over(sqlite_classroom, job_id))
    assert lost_queue.llen(queue_name) == 1
    _sent_minutes_ago(sqlite_classroom, job_id, 2)

    # Its task still waits in the queue (behind a backlog, say): not lost.
    assert celery_app.resend_lost(sqlite_classroom) == []
    assert lost_queue.llen(queue_name) == 1

    # The broker loses it (Redis restarted without its data): sent again, once.
    lost_queue.delete(queue_name)
    assert celery_app.resend_lost(sqlite_classroom) == [job_id]
    assert lost_queue.llen(queue_name) == 1
    assert celery_app.resend_lost(sqlite_classroom) == []  # sent just now
    assert lost_queue.llen(queue_name) == 1

    # Two processes looking at the same moment send it once.
    lost_queue.delete(queue_name)
    _sent_minutes_ago(sqlite_classroom, job_id, 2)
    found: list[list[int]] = []
    lookers = [
        threading.Thread(target=lambda: found.append(celery_app.resend_lost(sqlite_classroom)))
        for _ in range(2)
    ]
    for looker in lookers:
        looker.start()
    for looker in lookers:
        looker.join()
    assert sorted(found) == [[], [job_id]]
    assert lost_queue.llen(queue_name) == 1
    with sqlite_classroom.session() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.status == JobStatus.QUEUED
        assert job.params[celery_app.RESENT] == 2

    # Lost once more after the last resend allowed: failed in words, its lock given back.
    lost_queue.delete(queue_name)
    _sent_minutes_ago(sqlite_classroom, job_id, 2, **{celery_app.RESENT: celery_app.MAX_RESENDS})
    assert celery_app.resend_lost(sqlite_classroom) == []
    assert lost_queue.llen(queue_name) == 0
    with sqlite_classroom.session() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.status == JobStatus.FAILED
        assert (
            "its task was lost by the broker at redis://127.0.0.1:6379 4 times"
            in (job.report["error"])
        )
        assert job_service.find_unfinished(session, "d:4") is None


def test_a_dead_workers_job_not_taken_over_within_the_grace_is_sent_again(
    sqlite_classroom: Classroom, lost_queue: Any
) -> None:
    queue_name = celery_app.queue_name()
    job_id = queue(sqlite_classroom, kind="dispatch_test", actor=Actor.system(), lock_key="d:5")
    _running_for_a_dead_worker(sqlite_classroom, job_id, taken_over=0)
    backlog = queue(sqlite_classroom, kind="dispatch_test", actor=Actor.system())
    asyncio.run(celery_app.hand_over(sqlite_classroom, backlog))  # a task waits in the queue
    with sqlite_classroom.session() as session:
        job = session.get(Job, job_id)
        assert job is not None and left_to_workers(job, job_service.database_now(session))
    assert celery_app.resend_lost(sqlite_classroom) == []  # its worker died only just now

    _sent_minutes_ago(sqlite_classroom, job_id, 2)
    with sqlite_classroom.session() as session:
        job = session.get(Job, job_id)
        assert job is not None and not left_to_workers(job, job_service.database_now(session))
    # Running jobs are not behind a backlog: sent again though a task waits.
    assert celery_app.resend_lost(sqlite_classroom) == [job_id]
    assert lost_queue.llen(queue_name) == 2
    with sqlite_classroom.session() as session:
        job = session.get(Job, job_id)
        # Not failed as interrupted meanwhile: the grace starts again from the resend.
        assert job is not None and left_to_workers(job, job_service.database_now(session))
    assert runner.recover_interrupted(sqlite_classroom) == []


def test_the_scheduler_tick_sends_a_lost_task_again(
    sqlite_classroom: Classroom, lost_queue: Any
) -> None:
    from sislink.jobs.schedule import tick

    job_id = queue(sqlite_classroom, kind="dispatch_test", actor=Actor.system())
    asyncio.run(celery_app.hand_over(sqlite_classroom, job_id))
    lost_queue.delete(celery_app.queue_name())  # lost by the broker
    _sent_minutes_ago(sqlite_classroom, job_id, 2)

    async def never(classroom: Classroom) -> Any:
        raise AssertionError("no import is due: nothing is connected")

    assert asyncio.run(tick(sqlite_classroom, never)) is None

    assert lost_queue.llen(celery_app.queue_name()) == 1
    with sqlite_classroom.session() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.status == JobStatus.QUEUED
        assert job.params[celery_app.RESENT] == 1


def _running_elsewhere_lost_minutes_ago(classroom: Classroom, job_id: int, minutes: int) -> None:
    """Mark the job running on the workers for a worker of another machine that stopped
    answering `minutes` ago (its lease ran out then), its task sent then."""
    with classroom.transaction() as session:
        job = job_service.start_job(session, job_id)
        when = job_service.database_now(session) - timedelta(minutes=minutes)
        job.lease_holder = "host=other-machine;pid=4242;start=1;machine=another-boot"
        job.heartbeat_at = when
        job.lease_expires_at = when
        job.params = {ON_WORKERS: True, SENT_AT: when.isoformat()}


@pytest.mark.postgres
def test_a_takeover_keeps_what_the_resend_of_its_task_recorded(
    classroom: Classroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The resend sends the task before its commit: the worker that gets it at once must read
    the job as the resend leaves it, not overwrite its count and time with what it read
    before (the resends would then never reach their limit)."""
    if classroom.dialect_name != "postgresql":
        pytest.skip("SQLite serialises the two transactions: nothing is read before the commit")
    seen: list[dict[str, Any]] = []

    async def recorded(context: JobContext) -> Mapping[str, Any]:
        seen.append(dict(context.params))
        return {}

    monkeypatch.setitem(JOB_KINDS, "dispatch_resent", recorded)
    job_id = queue(classroom, kind="dispatch_resent", actor=Actor.system())
    _running_elsewhere_lost_minutes_ago(classroom, job_id, 10)
    with classroom.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        resent_params = {**job.params, SENT_AT: "2030-01-01T00:00:00+00:00", celery_app.RESENT: 1}
    answers: list[str] = []

    def deliver() -> None:
        try:
            outcome = asyncio.run(celery_app.run_delivered(classroom, job_id))
            answers.append(str(outcome.status) if outcome else "nothing to do")
        except BaseException as failed:  # said in the assertion below, not lost in a thread
            answers.append(repr(failed))
            raise

    with classroom.engine.connect() as resend:
        # The resend's transaction, as _send_again leaves it while its task is on its way.
        resend.execute(text("SELECT id FROM job WHERE id = :id FOR UPDATE"), {"id": job_id})
        resend.execute(sqlalchemy_update(Job).where(Job.id == job_id).values(params=resent_params))
        me = resend.scalar(text("SELECT pg_backend_pid()"))
        delivery = threading.Thread(target=deliver)
        delivery.start()
        with classroom.engine.connect() as watcher:
            for _ in range(POLLS):
                waiting = watcher.scalar(BEHIND, {"me": me})
                watcher.rollback()
                if waiting == 1:
                    break
                time.sleep(POLL_S)
            else:
                raise AssertionError(f"the delivery never waited for the resend: {answers}")
        resend.commit()
    delivery.join()

    assert answers == ["succeeded"]
    assert seen and seen[0][celery_app.RESENT] == 1
    assert seen[0][celery_app.TAKEN_OVER] == 1
    with classroom.session() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.params[celery_app.RESENT] == 1
        assert job.params[SENT_AT] == "2030-01-01T00:00:00+00:00"


def test_a_job_asked_to_stop_whose_worker_died_is_cancelled_not_run_again(
    sqlite_classroom: Classroom, lost_queue: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancel (or a disconnect) reached a running job while its worker still looked alive,
    then the worker died: neither the redelivered nor the resent task runs it again."""
    runs: list[int] = []

    async def counted(context: JobContext) -> Mapping[str, Any]:
        runs.append(context.job_id)
        return {}

    monkeypatch.setitem(JOB_KINDS, "dispatch_stopped", counted)
    for look in ("delivered", "resent"):
        job_id = queue(
            sqlite_classroom, kind="dispatch_stopped", actor=Actor.system(), lock_key=f"d:{look}"
        )
        _running_for_a_dead_worker(sqlite_classroom, job_id, taken_over=0)
        with sqlite_classroom.transaction() as session:
            job = session.get(Job, job_id)
            assert job is not None
            job.cancel_requested = True
        if look == "delivered":
            assert asyncio.run(celery_app.run_delivered(sqlite_classroom, job_id)) is None
        else:
            _sent_minutes_ago(sqlite_classroom, job_id, 2)
            assert celery_app.resend_lost(sqlite_classroom) == []
            assert lost_queue.llen(celery_app.queue_name()) == 0
        with sqlite_classroom.session() as session:
            job = session.get(Job, job_id)
            assert job is not None and job.status == JobStatus.CANCELLED, look
            assert job.report["cancelled"] is True
            assert "has ended" in job.report["error"]
            assert job_service.find_unfinished(session, f"d:{look}") is None
    assert runs == []


def test_handing_a_job_over_reads_the_database_clock_with_the_job(
    classroom: Classroom, lost_queue: Any
) -> None:
    """An export of every class hands over one job per class (8,000 in a district): the time
    its task is sent comes with the job's row, not from a query of its own for each."""
    from sqlalchemy import event

    job_id = queue(classroom, kind="dispatch_test", actor=Actor.system())
    reads: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            reads.append(statement)

    event.listen(classroom.engine, "before_cursor_execute", seen)
    try:
        asyncio.run(celery_app.hand_over(classroom, job_id))
    finally:
        event.remove(classroom.engine, "before_cursor_execute", seen)
    assert len(reads) == 1, reads
    with classroom.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        sent = runner.last_sent(job)
        now = job_service.database_now(session)
    assert timedelta(0) <= now - sent < timedelta(minutes=1)
    assert lost_queue.llen(celery_app.queue_name()) == 1


def test_a_job_running_on_a_living_worker_is_not_sent_again_however_late_its_heartbeat(
    sqlite_classroom: Classroom, lost_queue: Any
) -> None:
    """A worker of this machine that still runs (its heartbeat late under load, or waiting for
    SQLite's write lock behind an import) keeps its job: no second task is sent for it."""
    job_id = queue(sqlite_classroom, kind="dispatch_test", actor=Actor.system())
    with sqlite_classroom.transaction() as session:
        job = job_service.start_job(session, job_id)  # held by this (living) process
        when = job_service.database_now(session) - timedelta(minutes=10)
        job.heartbeat_at = when
        job.lease_expires_at = when
        job.params = {ON_WORKERS: True, SENT_AT: when.isoformat()}
    assert celery_app.resend_lost(sqlite_classroom) == []
    assert lost_queue.llen(celery_app.queue_name()) == 0
    with sqlite_classroom.session() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.status == JobStatus.RUNNING
        assert celery_app.RESENT not in job.params


@pytest.mark.parametrize("ends", ["stopped at its next batch", "finished its last batch"])
def test_a_worker_whose_job_another_worker_took_over_leaves_the_job_to_that_worker(
    ends: str, sqlite_classroom: Classroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker paused past its lease (its machine stalled, its database link down) comes back
    after a worker of another machine took the job over and started it again: the late one
    stops without ending the job (cancelled, succeeded), which the other is still running."""
    monkeypatch.setenv("SISLINK_JOB_LEASE_SECONDS", "0.6")  # a heartbeat every 0.1 s
    elsewhere = "host=other-machine;pid=4242;start=1;machine=another-boot"
    batches = 0

    async def taken_over_while_it_runs(context: JobContext) -> Mapping[str, Any]:
        nonlocal batches
        with sqlite_classroom.transaction() as session:
            # What run_delivered and the job's start do on the other machine.
            session.execute(
                sqlalchemy_update(Job)
                .where(Job.id == context.job_id)
                .values(
                    lease_holder=elsewhere,
                    params={ON_WORKERS: True, celery_app.TAKEN_OVER: 1},
                )
            )
        if ends == "finished its last batch":
            return {"done": True}
        for _ in range(1000):
            context.check_cancelled({"batches": batches})
            batches += 1
            await asyncio.sleep(0.01)
        return {"batches": batches}

    job_id = queue(sqlite_classroom, kind="dispatch_test", actor=Actor.system(), lock_key="d:7")
    outcome = asyncio.run(runner.execute(sqlite_classroom, job_id, taken_over_while_it_runs))

    assert batches < 1000, "the late worker went on after its job was taken over"
    assert outcome.status == JobStatus.RUNNING
    with sqlite_classroom.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        assert (job.status, job.lease_holder, job.report) == (JobStatus.RUNNING, elsewhere, {})
        assert job.finished_at is None and not job.cancel_requested
        holder = job_service.find_unfinished(session, "d:7")
        assert holder is not None and holder.id == job_id  # its lock is still the job's


def test_a_job_whose_hand_over_the_database_refused_is_not_left_queued_holding_its_lock(
    sqlite_classroom: Classroom, lost_queue: Any
) -> None:
    """The database refuses (restarting) the write that marks a job as the workers', in
    `serve`, which lives on: the job must not stay queued for it, holding its class's lock
    (every export of the class refused until `serve` restarts), with no task to run it."""
    with sqlite_classroom.engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TRIGGER refuse_hand_over BEFORE UPDATE ON job "
                "WHEN json_extract(NEW.params, '$.on_workers') IS NOT NULL "
                "BEGIN SELECT RAISE(ABORT, 'the database is restarting'); END"
            )
        )
    job_id = queue(sqlite_classroom, kind="dispatch_test", actor=Actor.system(), lock_key="d:8")
    with pytest.raises(Exception, match="the database is restarting"):
        asyncio.run(celery_app.run_on_workers(sqlite_classroom, job_id))

    with sqlite_classroom.session() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.status == JobStatus.FAILED
        assert "nothing of it ran" in job.report["error"]
        assert job_service.find_unfinished(session, "d:8") is None
    assert lost_queue.llen(celery_app.queue_name()) == 0


def test_a_redis_broker_that_stopped_answering_fails_the_job_and_lets_the_scheduler_go_on(
    sqlite_classroom: Classroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Redis that takes connections and never answers (paused, its packets dropped): the
    job's hand-over fails in words (its lock given back) and the look for lost tasks that
    every scheduler tick makes gives up, instead of both waiting for ever."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(50)
    taken: list[socket.socket] = []

    def take() -> None:
        while True:
            try:
                taken.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=take, daemon=True).start()
    monkeypatch.setenv("SISLINK_BROKER_URL", f"redis://127.0.0.1:{server.getsockname()[1]}/0")
    monkeypatch.setattr(celery_app, "BROKER_TIMEOUT_S", 0.3)
    celery_app.celery_app.cache_clear()
    answers: list[Any] = []

    def hand_over_and_look() -> None:
        try:
            answers.append(
                asyncio.run(
                    run_job(
                        sqlite_classroom, kind="dispatch_test", actor=Actor.system(),
                        work=_nothing, lock_key="d:9",
                    )
                )
            )  # fmt: skip
            answers.append(celery_app.resend_lost(sqlite_classroom))
        except BaseException as failed:  # said in the assertion below, not lost in a thread
            answers.append(failed)
            raise

    try:
        asking = threading.Thread(target=hand_over_and_look, daemon=True)
        asking.start()
        asking.join(120)  # only a guard against a hang: it ends in seconds
        assert not asking.is_alive(), "the hand-over or the look waited for ever"
    finally:
        server.close()
        for connection in taken:
            connection.close()
        celery_app.celery_app.cache_clear()
    outcome, resent = answers
    assert outcome.status == JobStatus.FAILED
    assert "could not be handed to the workers" in outcome.error
    assert resent == []
    with sqlite_classroom.session() as session:
        assert job_service.find_unfinished(session, "d:9") is None
