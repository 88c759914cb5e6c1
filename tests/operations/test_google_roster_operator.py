"""The operator's view of a Google roster sync: its Classroom calls in the metrics match its
report, and a sync held past the shrink guard e-mails the administrators at once (received by
a local SMTP server), like a held roster import."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from operations.smtp_inbox import body_of, running_inbox
from sislink.classroom import Classroom
from sislink.classroom.models import JobStatus
from sislink.googleclassroom import ClientSettings
from sislink.jobs import google_roster as roster_job
from sislink.jobs.runner import JobOutcome
from sislink.operations.metrics import PROCESS_REGISTRY
from sislink.sync.google_roster import google_connection_for_sync, open_google_client
from sync.google_roster_world import ADMIN, World, district

CONSOLE = "https://sislink.district.example"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def world(classroom: Classroom) -> Iterator[World]:
    with district(classroom) as made:
        yield made


def samples() -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in PROCESS_REGISTRY.collect()
        for sample in family.samples
    }


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())

    def total(found: Samples) -> float:
        return sum(v for (n, seen), v in found.items() if n == name and wanted <= seen)

    return total(after) - total(before)


def sync(world: World, shrink_threshold: float = 0.10) -> JobOutcome:
    connection = google_connection_for_sync(world.classroom)
    fast = ClientSettings(backoff_base_s=0.01, backoff_cap_s=0.05)
    with open_google_client(world.classroom, connection, fast) as client:
        return asyncio.run(
            roster_job.run_google_roster_sync(
                world.classroom, ADMIN, client=client, shrink_threshold=shrink_threshold
            )
        )


def test_a_sync_counts_its_calls_and_a_held_one_is_told_at_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = samples()
    first = sync(world)
    after = samples()
    assert first.status == JobStatus.SUCCEEDED
    calls = first.report["calls"]
    assert calls["writes"] > 0
    single = delta(before, after, "sislink_google_calls_total") - delta(
        before, after, "sislink_google_calls_total", call="batch"
    )
    assert single == calls["reads"] + calls["writes"]
    assert delta(before, after, "sislink_google_writes_total") == calls["writes"]
    assert (
        delta(
            before, after, "sislink_jobs_ended_total", kind="google_roster_sync", status="succeeded"
        )
        == 1
    )

    klass = world.classes()[3]
    sid = str(klass.sis_sourced_id)
    for email in sorted(world.roster()[sid][2])[:6]:
        world.end_enrolment(email, sid)
    world.import_roster()
    with running_inbox() as (inbox, port):
        monkeypatch.setenv("SISLINK_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("SISLINK_SMTP_PORT", str(port))
        monkeypatch.setenv("SISLINK_SUMMARY_TO", "it@district.example")
        monkeypatch.setenv("SISLINK_CONSOLE_URL", CONSOLE)
        held = sync(world, shrink_threshold=0.005)

    assert held.status == JobStatus.ON_HOLD
    (received,) = inbox.received
    assert received["Subject"] == (
        f"sislink: google roster sync (job {held.job_id}) is on hold for your review"
    )
    body = body_of(received)
    assert f"Why: {held.report['hold_reason']}" in body
    assert "This sync would remove 6 of the" in body
    assert f"Review it, then approve or discard it: {CONSOLE}/admin/google" in body
