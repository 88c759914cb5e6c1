"""sislink's Classroom client against the local Classroom: paging, batches, retries, quotas, and
Google's error JSON read into one sentence."""

from __future__ import annotations

import functools
import math
import time
from typing import Any

import pytest
from googleapiclient.discovery import Resource

from googleclassroom.google_world import (
    google_service,
    new_course,
    sislink_client,
    students_of,
    teachers_of,
)
from sislink.googleclassroom import (
    AlreadyExists,
    ClassroomClient,
    ClientSettings,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    QuotaExhausted,
)
from sislink.googleclassroom.emulator import ClassroomConfig, RunningClassroom, running_classroom


def _add_students(client: ClassroomClient, course: str, emails: list[str], *, batch: bool = True):
    return client.execute_many(
        [
            lambda s, e=e: s.courses().students().create(courseId=course, body={"userId": e})
            for e in emails
        ],
        batch=batch,
    )


def test_batched_adds_travel_fifty_to_a_request_to_the_endpoints_own_batch_path(
    local_classroom: RunningClassroom, client: ClassroomClient
) -> None:
    new_course(
        google_service(local_classroom, local_classroom.admin_email),
        local_classroom.teacher_email,
        alias="d:sis-batch",
    )
    emails = students_of(local_classroom, 60)
    before = local_classroom.classroom.log.batches

    outcomes = _add_students(client, "d:sis-batch", emails)

    assert all(o.ok for o in outcomes), [str(o.error) for o in outcomes if not o.ok]
    assert local_classroom.classroom.log.batches - before == math.ceil(60 / 50)
    assert client.batch_uri == local_classroom.api_url + "batch"
    assert local_classroom.classroom.log.calls["courses.students.create"] == 60
    listed = [o.result["profile"]["emailAddress"] for o in outcomes]
    assert listed == emails


def test_a_list_is_read_to_its_end_page_by_page(
    local_classroom: RunningClassroom, client: ClassroomClient
) -> None:
    new_course(
        google_service(local_classroom, local_classroom.admin_email),
        local_classroom.teacher_email,
        alias="d:sis-pages",
    )
    emails = students_of(local_classroom, 23)
    _add_students(client, "d:sis-pages", emails)
    before = local_classroom.classroom.log.calls["courses.students.list"]

    found = list(
        client.pages(
            lambda s, token: (
                s.courses().students().list(courseId="d:sis-pages", pageSize=5, pageToken=token)
            ),
            "students",
        )
    )

    assert [m["profile"]["emailAddress"] for m in found] == emails
    assert local_classroom.classroom.log.calls["courses.students.list"] - before == 5


def test_calls_answered_429_or_503_are_retried_until_they_succeed() -> None:
    config = ClassroomConfig(rate_429=0.15, rate_503=0.15, seed=3)
    with (
        running_classroom(students=80, config=config) as running,
        sislink_client(running) as client,
    ):
        new_course(
            google_service(running, running.admin_email),
            running.teacher_email,
            alias="d:sis-faults",
        )
        emails = students_of(running, 80)
        one_by_one = _add_students(client, "d:sis-faults", emails[:30], batch=False)
        batched = _add_students(client, "d:sis-faults", emails[30:], batch=True)

        assert all(o.ok for o in one_by_one + batched)
        assert running.classroom.log.faults["429"] > 0
        assert running.classroom.log.faults["503"] > 0
        assert client.retries >= sum(running.classroom.log.faults.values()) - 2  # token-free
        roster = (
            google_service(running, running.admin_email)
            .courses()
            .students()
            .list(courseId="d:sis-faults", pageSize=100)  # 30 a page without it
            .execute(num_retries=5)
        )
        assert len(roster["students"]) == 80


def test_retry_after_is_honoured() -> None:
    config = ClassroomConfig(rate_503=0.5, retry_after_s=1, seed=5)
    with (
        running_classroom(students=10, config=config) as running,
        sislink_client(running) as client,
    ):
        for _ in range(8):
            client.execute(lambda s: s.userProfiles().get(userId=running.teacher_email))
        assert running.classroom.log.faults["503"] > 0
        assert list(client.waits) == [1.0] * len(client.waits)
        assert len(client.waits) == running.classroom.log.faults["503"]


def test_a_quota_still_exhausted_after_every_retry_says_so_in_a_sentence() -> None:
    config = ClassroomConfig(rate_429=1.0)
    settings = ClientSettings(max_retries=2, backoff_base_s=0.01, backoff_cap_s=0.02)
    with (
        running_classroom(students=10, config=config) as running,
        sislink_client(running, settings) as client,
        pytest.raises(QuotaExhausted) as caught,
    ):
        client.execute(lambda s: s.courses().list())
    message = str(caught.value)
    assert "courses.list" in message and "3 tries" in message and "1,200 calls a minute" in message


def test_the_client_keeps_under_the_per_user_quota_instead_of_provoking_429s() -> None:
    config = ClassroomConfig(per_user_per_minute=30, per_client_per_minute=1000)
    settings = ClientSettings(calls_per_minute_per_user=30, backoff_base_s=0.01)
    with (
        running_classroom(students=10, config=config) as running,
        sislink_client(running, settings) as client,
    ):
        for _ in range(30):
            client.execute(lambda s: s.courses().list(pageSize=1))
        assert running.classroom.log.refused_for_quota == 0
        # The 31st must wait for the moving minute: the limiter says so without calling.
        limiter = client._per_user[running.admin_email]
        import time

        assert limiter.delay_for(1, time.monotonic()) > 0


def test_error_sentences_name_the_call_the_user_and_what_to_do(
    local_classroom: RunningClassroom, client: ClassroomClient
) -> None:
    admin = google_service(local_classroom, local_classroom.admin_email)
    new_course(admin, local_classroom.teacher_email, alias="d:sis-errors")

    with pytest.raises(PermissionDenied) as outside:
        client.execute(
            lambda s: (
                s.courses()
                .students()
                .create(courseId="d:sis-errors", body={"userId": "visitor@elsewhere.example.net"})
            )
        )
    assert outside.value.tag == "UserInIllegalDomain"
    assert "outside the Google Workspace domain" in str(outside.value)
    assert "courses.students.create" in str(outside.value)

    with pytest.raises(NotFound) as missing:
        client.execute(lambda s: s.courses().get(id="d:no-such-course"))
    assert "Check the course id or alias" in str(missing.value)

    with pytest.raises(AlreadyExists):
        client.execute(
            lambda s: s.courses().create(
                body={
                    "id": "d:sis-errors",
                    "name": "Again",
                    "ownerId": local_classroom.teacher_email,
                }
            )
        )

    client.execute(
        lambda s: s.courses().patch(
            id="d:sis-errors", updateMask="courseState", body={"courseState": "ACTIVE"}
        )
    )
    client.execute(
        lambda s: s.courses().patch(
            id="d:sis-errors", updateMask="courseState", body={"courseState": "ARCHIVED"}
        )
    )
    with pytest.raises(FailedPrecondition) as archived:
        client.execute(
            lambda s: s.courses().patch(
                id="d:sis-errors", updateMask="name", body={"name": "Renamed"}
            )
        )
    assert archived.value.tag == "CourseNotModifiable"
    assert "archived" in str(archived.value)


def test_coursework_of_another_project_reads_but_does_not_change(
    local_classroom: RunningClassroom, client: ClassroomClient, tmp_path
) -> None:
    teacher = local_classroom.teacher_email
    new_course(
        google_service(local_classroom, local_classroom.admin_email),
        teacher,
        alias="d:sis-project",
        courseState="ACTIVE",
    )
    _add_students(client, "d:sis-project", students_of(local_classroom, 3))
    other_key = local_classroom.new_project_key("another-vendor", tmp_path)
    other: Resource = google_service(local_classroom, teacher, key_file=other_key)
    work = (
        other.courses()
        .courseWork()
        .create(
            courseId="d:sis-project",
            body={
                "title": "Essay",
                "workType": "ASSIGNMENT",
                "state": "PUBLISHED",
                "maxPoints": 10,
            },
        )
        .execute()
    )

    listed = client.execute(
        lambda s: s.courses().courseWork().list(courseId="d:sis-project"), as_user=teacher
    )
    assert [w["id"] for w in listed["courseWork"]] == [work["id"]]
    assert listed["courseWork"][0]["associatedWithDeveloper"] is False
    with pytest.raises(PermissionDenied) as caught:
        client.execute(
            lambda s: (
                s.courses()
                .courseWork()
                .patch(
                    courseId="d:sis-project", id=work["id"], updateMask="title", body={"title": "X"}
                )
            ),
            as_user=teacher,
        )
    assert caught.value.tag == "ProjectPermissionDenied"
    assert "only the Cloud project that created" in str(caught.value)


def test_a_teacher_cannot_add_students_directly_but_can_invite_them(
    local_classroom: RunningClassroom, client: ClassroomClient
) -> None:
    teacher = local_classroom.teacher_email
    new_course(
        google_service(local_classroom, local_classroom.admin_email),
        teacher,
        alias="d:sis-invite",
        courseState="ACTIVE",
    )
    student = students_of(local_classroom, 1)[0]
    with pytest.raises(PermissionDenied) as caught:
        client.execute(
            lambda s: (
                s.courses().students().create(courseId="d:sis-invite", body={"userId": student})
            ),
            as_user=teacher,
        )
    assert "a teacher must invite them" in str(caught.value)

    invitation = client.execute(
        lambda s: s.invitations().create(
            body={"courseId": "d:sis-invite", "userId": student, "role": "STUDENT"}
        ),
        as_user=teacher,
    )
    client.execute(lambda s: s.invitations().accept(id=invitation["id"]), as_user=student)
    got = client.execute(
        lambda s: s.courses().students().get(courseId="d:sis-invite", userId=student)
    )
    assert got["profile"]["emailAddress"] == student
    assert teachers_of(local_classroom, 1) == [teacher]


def test_a_batch_sent_after_a_long_wait_does_not_meet_a_connection_the_server_closed() -> None:
    # Found by the benchmark: batches that waited a minute for the quota were sent on
    # kept-alive connections the server had closed (Broken pipe), and httplib2 does not
    # resend a POST that failed while being sent. Large bodies make the send span the reset.
    with (
        running_classroom(students=20, keep_alive_s=0.5) as running,
        sislink_client(
            running, ClientSettings(max_concurrency=1, idle_connection_s=0.5, max_retries=0)
        ) as client,
    ):

        def create(k: int, s: Resource) -> Any:
            body = {
                "id": f"p:idle-{k}",
                "name": f"Course {k}",
                "ownerId": running.teacher_email,
                "description": "x" * 20_000,
            }
            return s.courses().create(body=body)

        client.execute_many([functools.partial(create, k) for k in range(50)])
        time.sleep(1.6)  # longer than the server keeps an idle connection
        outcomes = client.execute_many([functools.partial(create, k) for k in range(50, 100)])
        assert [str(o.error) for o in outcomes if not o.ok] == []
