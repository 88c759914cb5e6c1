"""Which interrupted-looking jobs are left to the Celery workers (runner.left_to_workers): a job
handed over stays with the broker while queued, and for a grace period after its worker's last
heartbeat (its task is redelivered and taken over); any other job is failed as before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sislink.classroom.models import Job, JobStatus
from sislink.jobs.runner import ON_WORKERS, left_to_workers

NOW = datetime(2026, 12, 5, 4, 0, tzinfo=UTC)


def _job(status: JobStatus, *, on_workers: bool, beat_s_ago: float) -> Job:
    return Job(
        kind="mark_export",
        status=status,
        params={ON_WORKERS: True} if on_workers else {},
        heartbeat_at=NOW - timedelta(seconds=beat_s_ago),
    )


def test_a_queued_job_on_the_workers_is_left_to_them_however_long_it_waits() -> None:
    assert left_to_workers(_job(JobStatus.QUEUED, on_workers=True, beat_s_ago=86400), NOW)


def test_a_running_job_on_the_workers_is_left_to_them_for_the_grace_period_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SISLINK_REDELIVERY_GRACE_SECONDS", "60")
    assert left_to_workers(_job(JobStatus.RUNNING, on_workers=True, beat_s_ago=30), NOW)
    assert not left_to_workers(_job(JobStatus.RUNNING, on_workers=True, beat_s_ago=90), NOW)


def test_a_job_run_in_its_own_process_is_never_left_to_workers() -> None:
    assert not left_to_workers(_job(JobStatus.QUEUED, on_workers=False, beat_s_ago=1), NOW)
    assert not left_to_workers(_job(JobStatus.RUNNING, on_workers=False, beat_s_ago=1), NOW)


def test_a_grace_that_is_not_a_number_falls_back_to_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SISLINK_REDELIVERY_GRACE_SECONDS", "five minutes")
    assert left_to_workers(_job(JobStatus.RUNNING, on_workers=True, beat_s_ago=200), NOW)
    assert not left_to_workers(_job(JobStatus.RUNNING, on_workers=True, beat_s_ago=400), NOW)


def test_on_redis_a_dead_workers_job_is_left_until_its_task_can_be_redelivered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Redis gives a dead worker's task to another once its visibility timeout has passed (as
    # docs/deploy.md sets it, 900 s): the job waits for that, not for the 300 s default.
    monkeypatch.delenv("SISLINK_REDELIVERY_GRACE_SECONDS", raising=False)
    monkeypatch.setenv("SISLINK_JOB_LEASE_SECONDS", "30")
    monkeypatch.setenv("SISLINK_BROKER_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("SISLINK_BROKER_VISIBILITY_TIMEOUT", "900")
    assert left_to_workers(_job(JobStatus.RUNNING, on_workers=True, beat_s_ago=600), NOW)
    assert left_to_workers(_job(JobStatus.RUNNING, on_workers=True, beat_s_ago=920), NOW)
    assert not left_to_workers(_job(JobStatus.RUNNING, on_workers=True, beat_s_ago=940), NOW)
    # RabbitMQ redelivers as soon as the worker's connection closes: the 300 s default.
    monkeypatch.setenv("SISLINK_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
    assert not left_to_workers(_job(JobStatus.RUNNING, on_workers=True, beat_s_ago=400), NOW)
