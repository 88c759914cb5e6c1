"""The operator's view of a Google roster sync: its Classroom calls in the metrics match its
report, and a sync held past the shrink guard e-mails the administrators at once (received by
a local SMTP server), like a held roster import."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select, update

from operations.smtp_inbox import body_of, running_inbox
from sislink.classroom import Classroom
from sislink.classroom.models import Class, Enrolment, JobStatus, Person
from sislink.googleclassroom import ClientSettings
from sislink.jobs import google_roster as roster_job
from sislink.jobs.runner import JobOutcome
from sislink.operations.metrics import PROCESS_REGISTRY, StoredJobsCollector
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


def test_a_syncs_skipped_courses_and_members_are_counted_by_reason(world: World) -> None:
    """A class without a primary teacher and a student outside the domain: the sync's report
    says so, and sislink_items_skipped_total counts the same, by reason."""
    classes = world.classes()
    no_teacher, with_visitor = classes[0], classes[2]
    with world.classroom.transaction() as session:
        session.execute(
            update(Class).where(Class.id == no_teacher.id).values(primary_teacher_id=None)
        )
        session.execute(
            update(Enrolment)
            .where(Enrolment.class_id == no_teacher.id, Enrolment.role == "teacher")
            .values(active=False)
        )
        student_id = session.scalars(
            select(Enrolment.person_id).where(
                Enrolment.class_id == with_visitor.id, Enrolment.role == "student"
            )
        ).first()
        student = session.get(Person, student_id)
        assert student is not None
        student.email = student.email_key = "visitor@elsewhere.example.net"

    before = samples()
    done = sync(world)
    after = samples()
    assert done.status == JobStatus.NEEDS_ATTENTION
    skipped_courses = [c for c in done.report["courses"] if c["action"] == "skipped"]
    assert [c["reason"] for c in skipped_courses] == ["no primary teacher"]
    kind = "google_roster_sync"
    assert (
        delta(before, after, "sislink_items_skipped_total", kind=kind, reason="no_primary_teacher")
        == 1
    )
    counts = done.report["counts"]
    assert counts["students"]["skipped"] >= 1
    assert (
        delta(before, after, "sislink_items_skipped_total", kind=kind, reason="students_not_synced")
        == counts["students"]["skipped"]
    )
    assert delta(before, after, "sislink_items_skipped_total", kind=kind) == (
        len(skipped_courses) + counts["students"]["skipped"] + counts["teachers"]["skipped"]
    )


def test_holds_waiting_has_a_series_for_the_google_sync_at_zero(classroom: Classroom) -> None:
    """The alert rule `sislink_holds_waiting > 0` needs a series for each kind that can be held,
    at 0 when none is."""
    registry = CollectorRegistry()
    registry.register(StoredJobsCollector(classroom))
    waiting = {
        sample.labels["kind"]: sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == "sislink_holds_waiting"
    }
    assert waiting == {"roster_import": 0.0, "google_roster_sync": 0.0}
