"""PROMETHEUS_MULTIPROC_DIR: counts made in several processes are all in any process's
exposition (prometheus-client's multiprocess mode, which reads the variable at import)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

COUNT_ONE_JOB = """
from sislink.operations import metrics
metrics.job_started("roster_import")
metrics.job_ended("roster_import", "succeeded", 2.0, {})
"""

EXPOSE = """
import sys
from sislink.classroom import open_classroom
from sislink.operations.metrics import exposition
classroom = open_classroom(sys.argv[1])
sys.stdout.write(exposition(classroom).decode())
"""


def run_python(code: str, folder: Path, *args: str) -> str:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def test_jobs_counted_in_two_processes_are_reported_by_a_third(tmp_path: Path) -> None:
    folder = tmp_path / "prometheus"
    folder.mkdir()
    run_python(COUNT_ONE_JOB, folder)
    run_python(COUNT_ONE_JOB, folder)
    text = run_python(EXPOSE, folder, f"sqlite:///{tmp_path / 'classroom.db'}")
    assert 'sislink_jobs_started_total{kind="roster_import"} 2.0' in text
    assert 'sislink_jobs_ended_total{kind="roster_import",status="succeeded"} 2.0' in text
    assert 'sislink_job_duration_seconds_count{kind="roster_import",status="succeeded"} 2.0' in text
    assert "sislink_holds_waiting" in text


RUN_ONE_JOB = """
import asyncio, sys
from sislink.classroom import Actor, open_classroom
from sislink.jobs import runner

async def work(context):
    return {"done": 1}

classroom = open_classroom(sys.argv[1])
outcome = asyncio.run(runner.run_job(classroom, kind="probe", actor=Actor.system(), work=work))
sys.stdout.write(str(outcome.status))
"""


def test_a_job_runs_and_ends_when_the_metrics_folder_is_missing(tmp_path: Path) -> None:
    """A PROMETHEUS_MULTIPROC_DIR that does not exist (a typo, a folder wiped at reboot) costs
    the metrics, said in the log, never the job."""
    env = {k: v for k, v in os.environ.items() if k != "SISLINK_BROKER_URL"}
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "not-made")
    done = subprocess.run(
        [sys.executable, "-c", RUN_ONE_JOB, f"sqlite:///{tmp_path / 'classroom.db'}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "succeeded"
    assert "PROMETHEUS_MULTIPROC_DIR" in done.stderr  # said, in words
    assert done.stderr.count("PROMETHEUS_MULTIPROC_DIR") == 1  # once, not at every count
