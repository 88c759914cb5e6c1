"""/metrics after a real roster import and a real mark export: the counts match the jobs'
reports; holds waiting and the last successful run come from the database; the page is the
metrics token holder's only."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from sislink.classroom import Actor, Classroom
from sislink.classroom.models import Job, JobStatus
from sislink.classroom.services import jobs as job_service
from sislink.console.app import create_app
from sislink.jobs.mark_export import run_class_export
from sislink.jobs.roster import run_roster_import
from sislink.oneroster.provider.server import running_provider
from sislink.sync.export_report import Outcome
from sync.mark_export_world import build_world

TOKEN = "metrics-token-for-the-test"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def metrics_token(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("SISLINK_METRICS_TOKEN", TOKEN)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    yield TOKEN


def scrape(classroom: Classroom) -> Samples:
    with TestClient(create_app(classroom)) as client:
        answer = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200, answer.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, found), v in samples.items() if n == name and wanted <= found)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return total(after, name, **labels) - total(before, name, **labels)


@pytest.mark.anyio
async def test_metrics_after_an_export_and_an_import_match_their_reports(
    classroom: Classroom, metrics_token: str
) -> None:
    with running_provider(profile="generic-1.2", students=40) as sis:
        world = await build_world(sis, classroom, students=4)
        work = world.add_coursework("Fractions")
        for student in world.students[:3]:  # one student without a mark
            world.mark(work, student, score=8)
        world.add_coursework("Not published", publish=False)
        before = scrape(classroom)
        exported = await run_class_export(classroom, world.teacher, world.class_id)
        middle = scrape(classroom)
        imported = await run_roster_import(classroom, Actor.system())
        after = scrape(classroom)

    export_status = str(exported.job.status)
    assert delta(before, middle, "sislink_jobs_started_total", kind="mark_export") == 1
    assert (
        delta(before, middle, "sislink_jobs_ended_total", kind="mark_export", status=export_status)
        == 1
    )
    assert delta(before, middle, "sislink_job_duration_seconds_count", kind="mark_export") == 1
    assert exported.writes > 0
    assert delta(before, middle, "sislink_sis_writes_total") == exported.writes
    skipped = Counter(
        item.skip_reason
        for report in exported.reports
        for item in report.items
        if item.outcome is Outcome.SKIPPED
    )
    assert skipped == {"draft_coursework": 1}  # the unpublished work
    for reason, count in skipped.items():
        assert (
            delta(before, middle, "sislink_items_skipped_total", kind="mark_export", reason=reason)
            == count
        )
    assert delta(before, middle, "sislink_items_skipped_total", kind="mark_export") == sum(
        skipped.values()
    )

    import_status = str(imported.status)
    assert (
        delta(middle, after, "sislink_jobs_ended_total", kind="roster_import", status=import_status)
        == 1
    )
    assert delta(middle, after, "sislink_sis_calls_total") == imported.report["requests"]
    assert delta(middle, after, "sislink_sis_writes_total") == 0  # an import only reads
    for warning in imported.report["warnings"]:
        assert (
            delta(
                middle,
                after,
                "sislink_items_skipped_total",
                kind="roster_import",
                reason=warning["code"],
            )
            == warning["count"]
        )
    with classroom.session() as session:
        finished = session.get(Job, imported.job_id)
        assert finished is not None and finished.finished_at is not None
        ended_at = finished.finished_at.timestamp()
    assert total(
        after, "sislink_last_success_timestamp_seconds", kind="roster_import"
    ) == pytest.approx(ended_at, abs=0.001)
    assert total(after, "sislink_holds_waiting") == 0


def test_holds_waiting_counts_jobs_on_hold_by_kind(
    classroom: Classroom, metrics_token: str
) -> None:
    with classroom.transaction() as session:
        job = job_service.queue_job(session, Actor.system(), "roster_import", lock_key="held-1")
        session.flush()
        job_service.start_job(session, job.id)
        job_service.hold_job(session, job.id, "would deactivate most students", {})
    samples = scrape(classroom)
    assert total(samples, "sislink_holds_waiting", kind="roster_import") == 1
    with classroom.session() as session:
        assert session.get(Job, job.id).status == JobStatus.ON_HOLD  # type: ignore[union-attr]


def test_metrics_are_the_token_holders_only(
    classroom: Classroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SISLINK_METRICS_TOKEN", raising=False)
    with TestClient(create_app(classroom)) as client:
        assert client.get("/metrics").status_code == 404
        monkeypatch.setenv("SISLINK_METRICS_TOKEN", TOKEN)
        assert client.get("/metrics").status_code == 401
        wrong = client.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
        assert wrong.status_code == 401
        right = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert right.status_code == 200
    assert "sislink_holds_waiting" in right.text


def test_metrics_say_in_words_when_the_multiprocess_folder_is_missing(
    classroom: Classroom, metrics_token: str, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    """A PROMETHEUS_MULTIPROC_DIR that does not exist (a typo, a folder wiped at reboot) is a
    503 that names the variable, for the scraper's alert: not a 500 with a traceback."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", f"{tmp_path}/not-made")
    with TestClient(create_app(classroom), raise_server_exceptions=False) as client:
        answer = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 503
    assert "PROMETHEUS_MULTIPROC_DIR" in answer.json()["detail"]
    assert "not-made" in answer.json()["detail"]
