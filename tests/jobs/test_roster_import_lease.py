"""A roster import renews its job's lease inside its one write transaction, just before it
commits: an import taken over meanwhile (its process presumed gone) commits nothing, so a job
that was failed never leaves an applied import behind. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from sislink.classroom import Actor, Classroom
from sislink.classroom.models import Class, Job, JobStatus, Person
from sislink.classroom.services import jobs as job_service
from sislink.jobs.roster import run_roster_import
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sync.mark_export_world import connect_classroom


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def sis() -> Iterator[RunningProvider]:
    with running_provider(students=30) as running:
        yield running


def _counts(classroom: Classroom) -> tuple[int, int]:
    with classroom.session() as session:
        people = session.scalar(select(func.count()).select_from(Person)) or 0
        classes = session.scalar(select(func.count()).select_from(Class)) or 0
    return people, classes


@pytest.mark.anyio
async def test_an_import_taken_over_while_it_read_commits_nothing(
    sis: RunningProvider, classroom: Classroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A long lease: the heartbeat does not run during the test, so only the import's own
    # renewal before commit can notice the takeover.
    monkeypatch.setenv("SISLINK_JOB_LEASE_SECONDS", "3600")
    connect_classroom(sis, classroom)
    before = _counts(classroom)
    taken: list[int] = []

    def taken_over_while_reading(_entity: str, _done: int, _total: int | None) -> None:
        if taken:
            return
        # Another container (its own pid namespace) saw the lease run out and took the job.
        with classroom.transaction() as session:
            job = session.scalars(select(Job).where(Job.status == JobStatus.RUNNING)).one()
            holder = job_service.ProcessIdentity.parse(job.lease_holder)
            assert holder is not None
            elsewhere = job_service.ProcessIdentity("other-host", holder.pid, "1", "other/ns")
            job.lease_holder = elsewhere.token()
            job.lease_expires_at = job_service.database_now(session) - timedelta(seconds=1)
            session.flush()
            taken.extend(job_service.end_jobs_whose_holder_is_gone(session))

    outcome = await run_roster_import(
        classroom, Actor.system(), full=True, progress=taken_over_while_reading
    )
    assert len(taken) == 1 and outcome.job_id == taken[0]
    # The takeover's ending stands, and the import it ended applied nothing.
    assert outcome.status is JobStatus.FAILED
    assert outcome.error is not None and "no longer answers" in outcome.error
    assert _counts(classroom) == before
