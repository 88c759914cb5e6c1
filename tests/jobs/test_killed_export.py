"""A mark export run by `sislink marks export` in a process of its own, against the built-in SIS
(slow enough that the export is mid-run): killed with kill -9, the next export by the CLI runs
at once and leaves the SIS exact; a living export keeps its lock, even while paused past its
lease and while `sislink serve` starts. On SQLite and PostgreSQL.

The lease is short here (SISLINK_JOB_LEASE_SECONDS), so that a wrong takeover would show."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from sislink.classroom import Actor, open_classroom
from sislink.classroom.models import ExportRecord, Job, JobStatus
from sislink.classroom.services import jobs as job_service
from sislink.jobs.mark_export import CLASS_EXPORT
from sislink.jobs.schedule import Schedule, set_schedule
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.settings import Settings
from sync.mark_export_world import World, build_world, sis_holds

COURSEWORK = 20
STUDENTS = 12
# COURSEWORK x (1 + STUDENTS) writes, 16 at a time, each answered after this long: the export
# is still sending for several seconds after the first results land.
LATENCY_MS = 250
LEASE_S = "1"
# Polls (never a time limit on what is tested): how often, and how many before giving up.
POLL_S = 0.05
POLLS = 1200


@pytest.fixture
def sis() -> Iterator[RunningProvider]:
    with running_provider(profile="generic-1.2", students=60, latency_ms=LATENCY_MS) as running:
        yield running


@pytest.fixture
def world(sis: RunningProvider, tmp_path: Path, database_url: str) -> Iterator[World]:
    classroom = open_classroom(Settings.for_home(tmp_path, database_url))
    built = asyncio.run(build_world(sis, classroom, students=STUDENTS))
    for n in range(COURSEWORK):
        work = built.add_coursework(f"Work {n}")
        for student in built.students:
            built.mark(work, student, score=n % 10)
    yield built
    classroom.close()


def _environment(tmp_path: Path, world: World) -> dict[str, str]:
    url = world.classroom.engine.url.render_as_string(hide_password=False)
    return {
        **os.environ,
        "SISLINK_HOME": str(tmp_path),
        "SISLINK_DATABASE_URL": url,
        "SISLINK_JOB_LEASE_SECONDS": LEASE_S,
        "PYTHONUNBUFFERED": "1",
    }


def _export_command(world: World) -> list[str]:
    return [
        sys.executable, "-m", "sislink.cli", "marks", "export",
        "--class", str(world.class_id), "--as", world.teacher_email, "--json",
    ]  # fmt: skip


def _start_export(tmp_path: Path, world: World) -> subprocess.Popen[str]:
    return subprocess.Popen(
        _export_command(world),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_environment(tmp_path, world),
    )


def _export_now(tmp_path: Path, world: World) -> tuple[int, str]:
    done = subprocess.run(
        _export_command(world),
        capture_output=True,
        text=True,
        env=_environment(tmp_path, world),
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def _class_jobs(world: World) -> list[Job]:
    with world.classroom.session() as session:
        return list(
            session.scalars(
                select(Job)
                .where(Job.kind == CLASS_EXPORT, Job.class_id == world.class_id)
                .order_by(Job.id)
            )
        )


def _mid_run(world: World, export: subprocess.Popen[str]) -> Job:
    """Wait until the export's job runs and the SIS has some of its results; its job."""
    for _ in range(POLLS):
        assert export.poll() is None, "the export ended before it could be caught mid-run"
        running = [j for j in _class_jobs(world) if j.status == JobStatus.RUNNING]
        if running and world.sis.store.count("result") >= 3 * STUDENTS:
            return running[0]
        time.sleep(POLL_S)
    raise AssertionError("the export never got under way")


def _assert_sis_exact(world: World) -> None:
    """Every coursework once, with each student's result once; the ledger knows exactly that."""
    assert sis_holds(world) == (COURSEWORK, COURSEWORK * STUDENTS)
    titles = sorted(str(li["title"]) for li in world.sis.store.iter_all("lineItem"))
    assert titles == sorted(f"Work {n}" for n in range(COURSEWORK))
    pairs = [
        (r["lineItem"]["sourcedId"], r["student"]["sourcedId"])
        for r in world.sis.store.iter_all("result")
    ]
    assert len(set(pairs)) == len(pairs) == COURSEWORK * STUDENTS
    in_sis = {
        str(r["sourcedId"])
        for kind in ("lineItem", "result")
        for r in world.sis.store.iter_all(kind)
    }
    with world.classroom.session() as session:
        ledger = {
            r.sis_sourced_id
            for r in session.scalars(select(ExportRecord))
            if r.content_hash is not None
        }
    assert ledger == in_sis


def test_an_export_killed_mid_run_is_rerun_at_once_by_the_cli_and_the_sis_is_exact(
    world: World, tmp_path: Path
) -> None:
    export = _start_export(tmp_path, world)
    try:
        killed = _mid_run(world, export)
    finally:
        export.send_signal(signal.SIGKILL)
        export.wait()
    sent_before = world.sis.store.count("result")
    assert 0 < sent_before < COURSEWORK * STUDENTS

    code, said = _export_now(tmp_path, world)

    assert code == 0, said
    rerun = json.loads(said)
    assert rerun["status"] == "succeeded" and rerun["error"] is None
    (before, after) = _class_jobs(world)
    assert before.id == killed.id and before.status == JobStatus.FAILED
    assert before.report["error"] == (
        f"sislink stopped while this job ran (the process {export.pid} on "
        f"{socket.gethostname()} has ended); it is safe to run again: what was done is not "
        "done twice."
    )
    assert after.id == rerun["job_id"] and after.status == JobStatus.SUCCEEDED
    _assert_sis_exact(world)
    # Nothing is left for a third export to send.
    code, said = _export_now(tmp_path, world)
    assert code == 0 and json.loads(said)["writes"] == 0, said


def _wait_until_lease_ran_out(world: World, job_id: int) -> None:
    """Paused, a job's heartbeat stops: wait (in the database's time) until its lease ran out,
    so that only its process being there can keep its lock."""
    for _ in range(POLLS):
        with world.classroom.session() as session:
            job = session.get(Job, job_id)
            assert job is not None and job.lease_expires_at is not None
            if job_service.database_now(session) > job.lease_expires_at:
                return
        time.sleep(POLL_S)
    raise AssertionError("the paused export's lease never ran out")


def test_a_paused_export_keeps_its_lock_past_its_lease_and_finishes_when_resumed(
    world: World, tmp_path: Path
) -> None:
    export = _start_export(tmp_path, world)
    try:
        running = _mid_run(world, export)
        export.send_signal(signal.SIGSTOP)
        _wait_until_lease_ran_out(world, running.id)

        code, said = _export_now(tmp_path, world)

        assert code == 1, said
        assert f"(number {running.id}: mark export of one class" in said
        assert f"(the process {export.pid} on " in said and "still running" in said
        assert [j.status for j in _class_jobs(world)] == [JobStatus.RUNNING]
    finally:
        export.send_signal(signal.SIGCONT)
    output, _ = export.communicate()
    assert export.returncode == 0, output
    finished = json.loads(output)
    assert finished["job_id"] == running.id and finished["status"] == "succeeded"
    _assert_sis_exact(world)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_starting_while_the_cli_exports_leaves_the_export_running(
    world: World, tmp_path: Path
) -> None:
    # No scheduled roster import in the middle of this test.
    set_schedule(world.classroom, Actor.system(), Schedule(enabled=False))
    export = _start_export(tmp_path, world)
    port = _free_port()
    serve: subprocess.Popen[str] | None = None
    try:
        running = _mid_run(world, export)
        # Paused while serve starts (so that it is surely mid-run then), its lease run out: its
        # process still runs, so its job is its own.
        export.send_signal(signal.SIGSTOP)
        _wait_until_lease_ran_out(world, running.id)
        serve = subprocess.Popen(
            [sys.executable, "-m", "sislink.cli", "serve", "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            text=True,
            env=_environment(tmp_path, world),
        )
        # The console answers once serve has started (it recovers jobs before it listens).
        for _ in range(POLLS):
            assert serve.poll() is None, "sislink serve stopped"
            try:
                answered = httpx.get(f"http://127.0.0.1:{port}/login", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(POLL_S)
        else:
            raise AssertionError("sislink serve never answered")
        assert answered.status_code == 200
        with world.classroom.session() as session:
            job = session.get(Job, running.id)
            assert job is not None and job.status == JobStatus.RUNNING
        export.send_signal(signal.SIGCONT)
        output, _ = export.communicate()
    finally:
        export.send_signal(signal.SIGCONT)
        if export.poll() is None:
            export.kill()
        if serve is not None:
            serve.send_signal(signal.SIGINT)
            try:
                serve.wait(timeout=30)
            finally:
                if serve.poll() is None:
                    serve.kill()
    assert export.returncode == 0, output
    finished = json.loads(output)
    assert finished["job_id"] == running.id and finished["status"] == "succeeded"
    assert [j.status for j in _class_jobs(world)] == [JobStatus.SUCCEEDED]
    _assert_sis_exact(world)
