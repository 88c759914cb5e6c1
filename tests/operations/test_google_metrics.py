"""Google Classroom calls in the metrics: every attempt by API method and status, retries, 429s
and accepted writes, counted as the local Classroom saw them (faults injected), through the
connection's own client (authorise) and through a client's batches."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from googleclassroom.google_world import google_service, new_course, sislink_client, students_of
from sislink.classroom import Actor, Classroom
from sislink.googleclassroom import ClientSettings, TokenRefused
from sislink.googleclassroom.emulator import ClassroomConfig, RunningClassroom, running_classroom
from sislink.jobs.google_grades import run_grade_pull
from sislink.oneroster.provider.server import running_provider
from sislink.operations.metrics import PROCESS_REGISTRY, observe_google_call
from sislink.sync import google_connection as google
from sync.google_grades_world import build_grades_world

FAST_RETRIES = ClientSettings(max_retries=8, backoff_base_s=0.01, backoff_cap_s=0.05)
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples() -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in PROCESS_REGISTRY.collect()
        for sample in family.samples
    }


def total(found: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(value for (n, seen), value in found.items() if n == name and wanted <= seen)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return total(after, name, **labels) - total(before, name, **labels)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def faulty(request: pytest.FixtureRequest) -> Iterator[RunningClassroom]:
    """The local Classroom answering a share of calls 429 or 503 (parametrised: the rates)."""
    rate_429, rate_503 = getattr(request, "param", (0.2, 0.1))
    config = ClassroomConfig(rate_429=rate_429, rate_503=rate_503, seed=11)
    with running_classroom(students=60, config=config) as running:
        yield running


# Authorise makes a few calls: most of them fail at least once.
@pytest.mark.parametrize("faulty", [(0.5, 0.2)], indirect=True)
def test_authorise_calls_are_counted_by_method_and_status_with_their_retries_and_429s(
    classroom: Classroom, faulty: RunningClassroom
) -> None:
    google.connect(
        classroom,
        Actor.system(),
        key_file_text=faulty.key_file.read_text(),
        admin_email=faulty.admin_email,
        api_endpoint=faulty.api_url,
    )
    log = faulty.classroom.log
    calls_before, faults_before = sum(log.calls.values()), sum(log.faults.values())
    rate_limited_before = log.faults["429"]
    before = samples()

    google.authorise(classroom, Actor.system(), settings=FAST_RETRIES)

    after = samples()
    answered = sum(log.calls.values()) - calls_before
    faults = sum(log.faults.values()) - faults_before
    assert answered > 0 and faults > 0 and log.faults["429"] > rate_limited_before
    assert delta(before, after, "sislink_google_calls_total") == answered + faults
    assert delta(before, after, "sislink_google_rate_limited_total") == (
        log.faults["429"] - rate_limited_before
    )
    assert delta(before, after, "sislink_google_retries_total") == faults
    assert delta(before, after, "sislink_google_calls_total", call="userProfiles.get") >= 1
    assert delta(before, after, "sislink_google_writes_total") == 0  # authorise only reads


def test_batched_adds_count_each_call_inside_and_each_batch_round_trip(
    faulty: RunningClassroom,
) -> None:
    new_course(google_service(faulty, faulty.admin_email), faulty.teacher_email, alias="d:m-1")
    emails = students_of(faulty, 40)
    log = faulty.classroom.log
    batches_before, faults_before = log.batches, sum(log.faults.values())
    before = samples()
    with sislink_client(faulty, FAST_RETRIES) as client:
        client.call_observers.append(observe_google_call)
        outcomes = client.execute_many(
            [
                lambda s, e=e: s.courses().students().create(courseId="d:m-1", body={"userId": e})
                for e in emails
            ]
        )
    after = samples()

    assert all(outcome.ok for outcome in outcomes)
    faults = sum(log.faults.values()) - faults_before
    assert faults > 0
    created = delta(
        before, after, "sislink_google_calls_total", call="courses.students.create", status="200"
    )
    assert created == len(emails)
    assert (
        delta(before, after, "sislink_google_calls_total", call="courses.students.create")
        == len(emails) + faults
    )
    assert delta(before, after, "sislink_google_calls_total", call="batch") == (
        log.batches - batches_before
    )
    assert (
        delta(before, after, "sislink_google_retries_total", call="courses.students.create")
        == faults
    )
    assert delta(
        before, after, "sislink_google_writes_total", call="courses.students.create"
    ) == len(emails)


@pytest.mark.anyio
async def test_a_grade_pull_counts_the_classroom_calls_its_report_says(
    classroom: Classroom,
) -> None:
    with (
        running_provider(profile="generic-1.2", students=30) as sis,
        running_classroom(students=30) as local,
    ):
        g = await build_grades_world(sis, classroom, local, students=3)
        essay = g.add_work("Essay", points=20)
        g.grade(essay, g.emails[0], assigned=18, give_back=True)
        before = samples()
        run = await run_grade_pull(classroom, g.world.teacher, class_ids=[g.class_id])
        after = samples()

    assert run.report is not None and run.report.api_calls > 0
    asked = delta(before, after, "sislink_google_calls_total") - delta(
        before, after, "sislink_google_calls_total", call="batch"
    )
    assert asked == run.report.api_calls
    assert delta(before, after, "sislink_google_calls_total", status="200") == asked + delta(
        before, after, "sislink_google_calls_total", call="batch"
    )
    status = str(run.job.status)
    assert (
        delta(before, after, "sislink_jobs_ended_total", kind="google_grade_pull", status=status)
        == 1
    )


def test_a_token_refusal_is_not_counted_as_a_classroom_call() -> None:
    """Google's token endpoint refuses the user: no call reached Classroom, so none is counted
    (a `none` status means Classroom did not answer; a refusal is a TokenRefused, said in
    words). The call that follows for the admin is counted as usual."""
    with running_classroom(students=5) as running, sislink_client(running) as client:
        client.call_observers.append(observe_google_call)
        before = samples()
        with pytest.raises(TokenRefused):
            client.execute(
                lambda s: s.courses().list(pageSize=5), as_user="visitor@elsewhere.example.net"
            )
        middle = samples()
        client.execute(lambda s: s.courses().list(pageSize=5))
        after = samples()
    assert delta(before, middle, "sislink_google_calls_total") == 0
    assert (
        delta(middle, after, "sislink_google_calls_total", call="courses.list", status="200") == 1
    )
