"""Grades from Google Classroom to the SIS, against the local Classroom and the built-in SIS on
loopback: coursework and grades made in Classroom by the teacher through Google's client
library, pulled into the class, exported by the existing mark export. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from sislink.classroom import Actor, Classroom
from sislink.classroom.models import (
    Coursework,
    CourseworkState,
    GoogleCourseLink,
    JobStatus,
    MarkExportReport,
)
from sislink.classroom.services import connections
from sislink.classroom.services.export_settings import change_export_choices
from sislink.googleclassroom.emulator import RunningClassroom, running_classroom
from sislink.googleclassroom.emulator.app import ClassroomConfig
from sislink.jobs.google_grades import run_grade_pull
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.sync.google_grades import PULL_SOURCE, PullRefused, pull_grades
from sync.google_grades_world import GradesWorld, build_grades_world
from sync.mark_export_world import sis_gradebook


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def sis() -> Iterator[RunningProvider]:
    with running_provider(profile="generic-1.2", students=60) as running:
        yield running


@pytest.fixture(scope="module")
def local() -> Iterator[RunningClassroom]:
    # Quotas raised: a test makes 1,001 courseWork as the teacher, once per database.
    config = ClassroomConfig(per_user_per_minute=100_000, per_client_per_minute=100_000)
    with running_classroom(students=60, config=config) as running:
        yield running


async def _grades_world(
    sis: RunningProvider, classroom: Classroom, local: RunningClassroom
) -> GradesWorld:
    return await build_grades_world(sis, classroom, local)


def _scores(results: dict[str, list[object]]) -> list[float]:
    return sorted(float(r.score) for rs in results.values() for r in rs)  # type: ignore[attr-defined]


@pytest.mark.anyio
async def test_grades_made_in_classroom_reach_the_sis_and_only_changes_are_sent(
    sis: RunningProvider, classroom: Classroom, local: RunningClassroom
) -> None:
    g = await _grades_world(sis, classroom, local)
    a, b = g.emails[:2]
    essay = g.add_work("Essay", points=20, category="Homework")
    quiz = g.add_work("Quiz", points=10, category="Tests", due=g.ahead(14))
    g.grade(essay, a, draft=18, assigned=18, give_back=True)
    g.grade(essay, b, draft=15)  # a draft grade, not returned
    g.grade(quiz, a, assigned=7.5, give_back=True)

    run = await run_grade_pull(classroom, g.world.teacher, class_ids=[g.class_id], export=True)
    assert run.report is not None
    pulled = run.report.courses[0]
    assert pulled.coursework["created"] == 2 and pulled.marks["created"] == 3
    marks = g.marks()
    assert marks[("Essay", a)].score == 18 and marks[("Essay", a)].state == "returned"
    assert marks[("Essay", b)].score == 15 and marks[("Essay", b)].state == "draft"
    items, results = await sis_gradebook(g.world)
    assert sorted(li.title for li in items) == ["Essay", "Quiz"]
    assert _scores(results) == [7.5, 18.0]  # the draft grade stays in Classroom
    assert {li.title: li.result_value_max for li in items} == {"Essay": 20, "Quiz": 10}
    assert run.job.status == JobStatus.SUCCEEDED
    with classroom.session() as session:
        link = session.scalars(select(GoogleCourseLink)).one()
        assert link.grades_watermark and link.grades_pulled_at and link.last_grade_job_id

    # Nothing changed in Classroom: no mark touched, nothing sent.
    before = {k: (m.updated_at, m.score) for k, m in g.marks().items()}
    calls_before = local.classroom.log.http_requests
    again = await run_grade_pull(classroom, g.world.teacher, class_ids=[g.class_id], export=True)
    assert again.report is not None
    assert again.report.courses[0].changed is False
    assert again.report.api_calls == 2  # courseWork and submissions lists, nothing more
    assert local.classroom.log.http_requests - calls_before <= 2  # one batch (+ a token)
    assert {k: (m.updated_at, m.score) for k, m in g.marks().items()} == before
    assert again.report.exports == [] and again.report.to_dict()["writes"] == 0

    # One grade changed in Classroom: only that result goes.
    g.grade(quiz, a, assigned=9, give_back=True)
    changed = await run_grade_pull(classroom, g.world.teacher, class_ids=[g.class_id], export=True)
    assert changed.report is not None
    assert changed.report.courses[0].marks["updated"] == 1
    assert changed.report.courses[0].marks["unchanged"] == 0  # only what changed was looked at
    (export,) = changed.report.exports
    assert export.writes == 1
    _, results = await sis_gradebook(g.world)
    assert _scores(results) == [9.0, 18.0]

    # The class lets draft marks go: the draft grade goes at the next export.
    with classroom.transaction() as session:
        change_export_choices(session, g.world.teacher, g.class_id, export_drafts=True)
    g.grade(essay, b, draft=16)
    drafts = await run_grade_pull(classroom, g.world.teacher, class_ids=[g.class_id], export=True)
    assert drafts.report is not None and drafts.report.exports[0].writes == 1
    _, results = await sis_gradebook(g.world)
    assert _scores(results) == [9.0, 16.0, 18.0]

    # The teacher deletes the essay in Classroom: its lineItem and results leave the SIS.
    g.delete_work(essay)
    gone = await run_grade_pull(classroom, g.world.teacher, class_ids=[g.class_id], export=True)
    assert gone.report is not None and gone.report.courses[0].coursework["deleted"] == 1
    items, results = await sis_gradebook(g.world)
    assert [li.title for li in items] == ["Quiz"] and _scores(results) == [9.0]
    with classroom.session() as session:
        states = {w.title: w.state for w in session.scalars(select(Coursework))}
    assert states == {"Essay": CourseworkState.DELETED, "Quiz": CourseworkState.PUBLISHED}


@pytest.mark.anyio
async def test_what_cannot_go_to_the_sis_is_said_in_the_troubleshoot_report(
    sis: RunningProvider, classroom: Classroom, local: RunningClassroom
) -> None:
    g = await _grades_world(sis, classroom, local)
    a = g.emails[0]
    last = g.world.facts.grading_periods[-1].end_date
    g.add_work("Reading log", points=None)  # ungraded
    g.add_work("Fun quiz", category="Fun Extras")  # a category the SIS class lacks
    g.add_work("Summer task", due=last.replace(year=last.year + 1))  # outside every period
    g.add_work("Plan", state="DRAFT")
    graded = g.add_work("Essay", points=20)
    g.grade(graded, g.outsider, assigned=12, give_back=True)  # not a student of the class
    g.grade(graded, a, assigned=17, give_back=True)
    big = g.add_work("Big essay", points=10)
    g.grade(big, a, assigned=25, give_back=True)  # above the extra-credit limit (2 x 10)

    run = await run_grade_pull(classroom, g.world.teacher, class_ids=[g.class_id], export=True)
    assert run.report is not None
    assert run.job.status == JobStatus.NEEDS_ATTENTION
    pulled = run.report.courses[0]
    reasons = {(i.coursework_title, i.skip_reason) for i in pulled.items}
    assert reasons == {
        ("Reading log", "no_points"),
        ("Fun quiz", "category_not_in_sis"),
        ("Plan", "draft_coursework"),
        ("Essay", "student_not_in_sis_class"),
        ("Big essay", "above_extra_credit_limit"),
    }
    said = {i.coursework_title: i.reason for i in pulled.items}
    assert "'Fun Extras'" in said["Fun quiz"] and "Homework" in said["Fun quiz"]
    assert g.outsider in said["Essay"]
    # The due date outside every grading period is the export's pre-flight's to say.
    (export,) = run.report.exports
    skipped = {(i.coursework_title, i.skip_reason) for i in export.items if i.skip_reason}
    assert ("Summer task", "due_date_outside_grading_periods") in skipped
    items, results = await sis_gradebook(g.world)
    assert sorted(li.title for li in items) == ["Big essay", "Essay"]
    assert _scores(results) == [17.0]
    # Both are in the class's troubleshoot report (its export history).
    with classroom.session() as session:
        kept = session.scalars(
            select(MarkExportReport).where(MarkExportReport.class_id == g.class_id)
        ).all()
    sources = [(r.summary or {}).get("source") for r in kept]
    assert sources.count(PULL_SOURCE) == 1 and len(kept) == 2
    pull_row = next(r for r in kept if (r.summary or {}).get("source") == PULL_SOURCE)
    assert {i["skip_reason"] for i in pull_row.items} >= {"no_points", "category_not_in_sis"}
    assert run.job.report["attention"]["count"] >= 5

    # Pulled again with nothing changed: no new report row, and what is kept out (a draft,
    # ungraded work, a category the class lacks) costs no call beyond the two lists; grades
    # kept out (a student not in the class, above the limit) are looked at again, which costs
    # the course's students and grading periods (Classroom set the work's period by its due
    # date).
    again = await run_grade_pull(classroom, g.world.teacher, class_ids=[g.class_id])
    assert again.report is not None and again.report.api_calls == 4
    assert {i.skip_reason for i in again.report.courses[0].items} >= {
        "student_not_in_sis_class",
        "above_extra_credit_limit",
    }
    with classroom.session() as session:
        assert len(session.scalars(select(MarkExportReport)).all()) == 2


@pytest.mark.anyio
async def test_permission_off_pulls_nothing_and_says_why(
    sis: RunningProvider, classroom: Classroom, local: RunningClassroom
) -> None:
    g = await _grades_world(sis, classroom, local)
    work = g.add_work("Essay", points=20)
    g.grade(work, g.emails[0], assigned=18, give_back=True)
    with classroom.transaction() as session:
        connections.set_teacher_export(session, Actor.system(), False)
    calls_before = local.classroom.log.http_requests
    for actor in (g.world.teacher, Actor.system()):
        with pytest.raises(PullRefused, match="Enable classwork and mark exporting"):
            await run_grade_pull(classroom, actor, class_ids=[g.class_id], export=True)
        with pytest.raises(PullRefused, match="switched off"):
            pull_grades(classroom, actor)
    assert local.classroom.log.http_requests == calls_before
    with classroom.session() as session:
        assert session.scalars(select(Coursework)).all() == []
    items, _ = await sis_gradebook(g.world)
    assert items == []


@pytest.mark.anyio
async def test_missing_work_and_a_teacher_who_does_not_teach_the_class(
    sis: RunningProvider, classroom: Classroom, local: RunningClassroom
) -> None:
    g = await _grades_world(sis, classroom, local)
    a, b = g.emails[:2]
    from datetime import UTC, datetime, timedelta

    yesterday = (datetime.now(UTC) - timedelta(days=2)).date()
    work = g.add_work("Lab", points=10, due=yesterday)
    g.grade(work, b, assigned=8, give_back=True)
    g.grade(work, g.outsider, assigned=6, give_back=True)
    # The outsider leaves the Classroom course (their submission is still listed): no longer a
    # student of the course, they are not said to be one, nor is their grade kept out.
    g.teacher.courses().students().delete(courseId=g.course_id, userId=g.outsider).execute(
        num_retries=3
    )
    report = pull_grades(classroom, g.world.teacher, class_ids=[g.class_id])
    assert report.courses[0].items == []
    marks = g.marks()
    assert marks[("Lab", a)].missing is True and marks[("Lab", a)].score is None
    assert marks[("Lab", a)].state == "returned"  # Classroom shows "Missing" to the student
    assert marks[("Lab", b)].missing is False and marks[("Lab", b)].score == 8
    assert report.courses[0].marks["created"] == len(g.emails)

    # Work that falls due between two pulls is looked at again (its submissions may have
    # become missing), though nothing of it changed in Classroom; other work is not.
    from sislink.classroom.models import Mark

    def forget_missing_marks() -> None:
        with classroom.transaction() as session:
            for mark in session.scalars(select(Mark).where(Mark.missing.is_(True))):
                session.delete(mark)

    forget_missing_marks()
    unchanged = pull_grades(classroom, g.world.teacher, class_ids=[g.class_id])
    assert unchanged.courses[0].marks["created"] == 0 and unchanged.api_calls == 2
    forget_missing_marks()
    with classroom.transaction() as session:
        link = session.scalars(select(GoogleCourseLink)).one()
        link.grades_pulled_at = datetime.now(UTC) - timedelta(days=5)  # before the due date
    fell_due = pull_grades(classroom, g.world.teacher, class_ids=[g.class_id])
    assert fell_due.courses[0].marks["created"] == len(g.emails) - 1
    assert g.marks()[("Lab", a)].missing is True

    # Someone who does not teach the class is told so, and nothing is pulled for them.
    from sislink.classroom.models import Role
    from sislink.classroom.services import people

    with classroom.transaction() as session:
        other = Actor.of(
            people.create_person(
                session, Actor.system(), name="Other", email="o@x.example", roles=[Role.TEACHER]
            )
        )
    refused = pull_grades(classroom, other, class_ids=[g.class_id])
    assert refused.courses[0].refused and "do not teach" in refused.courses[0].refused
    assert pull_grades(classroom, other).courses == []


@pytest.mark.anyio
async def test_a_class_another_pull_is_writing_or_gone_from_classroom_is_reported_not_pulled(
    sis: RunningProvider, classroom: Classroom, local: RunningClassroom
) -> None:
    from sislink.jobs.google_grades import GRADE_PULL
    from sislink.jobs.runner import queue
    from sislink.sync.google_grades import class_lock

    g = await _grades_world(sis, classroom, local)
    g.add_work("Essay", points=20)
    other = queue(classroom, kind=GRADE_PULL, actor=Actor.system(), lock_key=class_lock(g.class_id))
    run = await run_grade_pull(classroom, Actor.system())
    assert run.report is not None and run.job.status == JobStatus.NEEDS_ATTENTION
    (course,) = run.report.courses
    assert (
        course.refused and "another grade pull" in course.refused and str(other) in course.refused
    )
    with classroom.session() as session:
        assert session.scalars(select(Coursework)).all() == []

    # The course is gone from Classroom (deleted there): said in Classroom's words.
    from sislink.jobs.runner import request_cancel

    request_cancel(classroom, other, Actor.system())
    with classroom.transaction() as session:
        session.scalars(select(GoogleCourseLink)).one().course_id = "404404404"
    gone = pull_grades(classroom, Actor.system())
    (course,) = gone.courses
    assert course.failed and "could not be asked" in course.failed
    assert gone.to_dict()["attention"]["count"] == 1


@pytest.mark.anyio
async def test_export_after_a_pull_sends_what_an_earlier_pull_brought_and_then_nothing(
    sis: RunningProvider, classroom: Classroom, local: RunningClassroom
) -> None:
    g = await _grades_world(sis, classroom, local)
    work = g.add_work("Essay", points=20)
    g.grade(work, g.emails[0], assigned=14, give_back=True)
    first = await run_grade_pull(classroom, g.world.teacher, class_ids=[g.class_id])
    assert first.report is not None and first.report.exports == []  # pulled, not exported
    later = await run_grade_pull(classroom, g.world.teacher, class_ids=[g.class_id], export=True)
    assert later.report is not None and later.report.courses[0].changed is False
    (export,) = later.report.exports
    assert export.writes == 2  # the lineItem and the result the first pull brought
    quiet = await run_grade_pull(classroom, g.world.teacher, class_ids=[g.class_id], export=True)
    assert quiet.report is not None and quiet.report.exports == []
    items, results = await sis_gradebook(g.world)
    assert [li.title for li in items] == ["Essay"] and _scores(results) == [14.0]


def test_the_partial_response_masks_name_only_fields_of_google_s_schemas() -> None:
    """The local Classroom answers whole resources whatever `fields` says; Google answers only
    the fields named (and 400 for a name it does not know): each must be in the discovery
    document the client library ships."""
    import json
    import os
    import re
    from pathlib import Path

    import googleapiclient

    from sislink.sync import google_grades

    shipped = os.path.join(
        os.path.dirname(googleapiclient.__file__), "discovery_cache/documents/classroom.v1.json"
    )
    schemas = json.loads(Path(shipped).read_text(encoding="utf-8"))["schemas"]
    for mask, listing, item in (
        (google_grades.COURSE_WORK_FIELDS, "ListCourseWorkResponse", "CourseWork"),
        (google_grades.SUBMISSION_FIELDS, "ListStudentSubmissionsResponse", "StudentSubmission"),
        (google_grades.STUDENT_FIELDS, "ListStudentsResponse", "Student"),
    ):
        top, _, inner = mask.partition("(")
        assert set(re.split(r",", top)) <= set(schemas[listing]["properties"])
        assert inner.endswith(")")
        named = re.sub(r"\([^()]*\)", "", inner[:-1])
        assert set(named.split(",")) <= set(schemas[item]["properties"]), mask
    assert set(google_grades.WORK_FIELDS.split(",")) <= set(schemas["CourseWork"]["properties"])


@pytest.mark.anyio
async def test_a_grade_kept_out_is_taken_once_its_cause_is_fixed_though_classroom_did_not_change(
    sis: RunningProvider, classroom: Classroom, local: RunningClassroom
) -> None:
    """A grade kept out (a Classroom student not in the class, a grade above the extra-credit
    limit) is looked at again at the next pull: once the student is enrolled or the limit
    raised it is taken, though nothing changed in Classroom (its updateTime is older than the
    course's watermark)."""
    from sislink.classroom.models import EnrolmentRole, Role
    from sislink.classroom.services import classes, people

    g = await _grades_world(sis, classroom, local)
    a = g.emails[0]
    essay = g.add_work("Essay", points=10)
    g.grade(essay, g.outsider, assigned=8, give_back=True)
    g.grade(essay, a, assigned=25, give_back=True)  # above the limit (2 x 10)
    first = pull_grades(classroom, g.world.teacher, class_ids=[g.class_id])
    assert {i.skip_reason for i in first.courses[0].items} == {
        "student_not_in_sis_class",
        "above_extra_credit_limit",
    }
    assert ("Essay", a) not in g.marks()

    with classroom.transaction() as session:
        change_export_choices(session, g.world.teacher, g.class_id, extra_credit=3)
        newcomer = people.create_person(
            session, Actor.system(), name="New Student", email=g.outsider, roles=[Role.STUDENT]
        )
        classes.enrol(session, Actor.system(), g.class_id, newcomer.id, EnrolmentRole.STUDENT)
    again = pull_grades(classroom, g.world.teacher, class_ids=[g.class_id])
    assert again.courses[0].items == []
    marks = g.marks()
    assert marks[("Essay", a)].score == 25 and marks[("Essay", g.outsider)].score == 8

    # Nothing kept out any more: the next pull costs the two lists again.
    quiet = pull_grades(classroom, g.world.teacher, class_ids=[g.class_id])
    assert quiet.api_calls == 2 and quiet.courses[0].changed is False


@pytest.mark.anyio
async def test_a_grade_removed_in_classroom_leaves_the_sis_and_new_points_reach_it(
    sis: RunningProvider, classroom: Classroom, local: RunningClassroom
) -> None:
    g = await _grades_world(sis, classroom, local)
    a, b = g.emails[:2]
    essay = g.add_work("Essay", points=20)
    g.grade(essay, a, draft=18, assigned=18, give_back=True)
    g.grade(essay, b, draft=12, assigned=12, give_back=True)
    await run_grade_pull(classroom, g.world.teacher, class_ids=[g.class_id], export=True)
    _, results = await sis_gradebook(g.world)
    assert _scores(results) == [12.0, 18.0]

    # The teacher clears b's grade and returns the work without one; and makes it out of 25.
    submission = g.submission_of(essay, b)
    g.teacher.courses().courseWork().studentSubmissions().patch(
        courseId=g.course_id,
        courseWorkId=essay,
        id=submission["id"],
        updateMask="draftGrade,assignedGrade",
        body={},
    ).execute(num_retries=3)
    g.teacher.courses().courseWork().patch(
        courseId=g.course_id, id=essay, updateMask="maxPoints", body={"maxPoints": 25}
    ).execute(num_retries=3)
    run = await run_grade_pull(classroom, g.world.teacher, class_ids=[g.class_id], export=True)
    assert run.report is not None and run.job.status == JobStatus.SUCCEEDED
    assert g.marks()[("Essay", b)].score is None
    items, results = await sis_gradebook(g.world)
    assert _scores(results) == [18.0]
    assert [li.result_value_max for li in items] == [25]


@pytest.mark.anyio
async def test_a_grade_changed_while_a_pull_pages_through_the_submissions_is_taken_next_time(
    sis: RunningProvider, classroom: Classroom, local: RunningClassroom
) -> None:
    """The submissions list is read page by page: a grade changed after its page was read, and
    another changed later on a page not read yet, must not set the watermark past the first
    (it would never be looked at again)."""
    from sislink.googleclassroom.client import CallAttempt
    from sislink.sync.google_grades import open_classroom_client
    from sync.google_grades_world import google_service

    g = await _grades_world(sis, classroom, local)
    a, b = g.emails[:2]
    admin = google_service(local, local.admin_email)
    enrolled = {*g.emails, g.outsider}
    others = [
        u.email
        for u in local.directory.users
        if u.role == "student" and u.in_domain and u.email not in enrolled
    ]
    for email in others[: 50 - len(enrolled)]:
        admin.courses().students().create(courseId=g.course_id, body={"userId": email}).execute(
            num_retries=3
        )
    # 50 students x 20 works fill the local Classroom's first page (1,000); the 21st is after.
    works = [g.add_work(f"Work {n:02d}", points=10) for n in range(1, 22)]

    graded: list[str] = []

    def teacher_grades_meanwhile(attempt: CallAttempt) -> None:
        if "studentSubmissions.list" in attempt.call and not graded:
            graded.append(attempt.call)
            g.grade(works[0], a, assigned=7, give_back=True)  # its page is read already
            g.grade(works[-1], b, assigned=9, give_back=True)  # on the page not read yet

    client = open_classroom_client(classroom)
    client.call_observers.append(teacher_grades_meanwhile)
    try:
        first = pull_grades(classroom, g.world.teacher, class_ids=[g.class_id], client=client)
    finally:
        client.close()
    assert graded and first.api_calls > 2  # the submissions took two pages
    marks = g.marks()
    assert marks[("Work 21", b)].score == 9 and ("Work 01", a) not in marks

    pull_grades(classroom, g.world.teacher, class_ids=[g.class_id])
    assert g.marks()[("Work 01", a)].score == 7


@pytest.mark.anyio
async def test_the_last_pull_is_dated_when_classroom_was_asked_so_work_falling_due_meanwhile_is_seen(
    sis: RunningProvider, classroom: Classroom, local: RunningClassroom
) -> None:
    """Work falling due between the pull's asking Classroom and its writing the class is looked
    at again next pull (work that fell due since the last pull is): the last pull's time is
    when Classroom was asked, not when the pull ended."""
    from datetime import UTC, datetime

    from sislink.googleclassroom.client import CallAttempt
    from sislink.sync.google_grades import open_classroom_client

    g = await _grades_world(sis, classroom, local)
    g.add_work("Essay", points=10)
    asked: list[datetime] = []

    def note_when_asked(attempt: CallAttempt) -> None:
        if "studentSubmissions.list" in attempt.call:
            asked.append(datetime.now(UTC))

    client = open_classroom_client(classroom)
    client.call_observers.append(note_when_asked)
    try:
        pull_grades(classroom, g.world.teacher, class_ids=[g.class_id], client=client)
    finally:
        client.close()
    with classroom.session() as session:
        pulled_at = session.scalars(select(GoogleCourseLink)).one().grades_pulled_at
    assert pulled_at is not None and asked
    if pulled_at.tzinfo is None:
        pulled_at = pulled_at.replace(tzinfo=UTC)
    assert pulled_at <= asked[0]


@pytest.mark.anyio
async def test_work_shifted_out_of_a_page_while_the_pull_lists_is_not_deleted(
    sis: RunningProvider, classroom: Classroom, local: RunningClassroom
) -> None:
    """courseWork is listed page by page (newest first): work deleted on a page already read
    shifts the next page's first item onto it, so that item is missing from this listing
    though it is still in Classroom. It must not be deleted (nor its lineItem and results
    from the SIS); only work Classroom confirms gone is."""
    from collections import Counter
    from collections.abc import Callable
    from urllib.parse import urljoin

    from googleapiclient.http import BatchHttpRequest

    from sislink.googleclassroom.client import CallAttempt
    from sislink.googleclassroom.discovery import batch_path
    from sislink.sync.google_grades import GooglePullReport, open_classroom_client

    g = await _grades_world(sis, classroom, local)
    made: list[str] = []

    def keep(_id: str, answer: dict[str, str], error: object) -> None:
        assert error is None, error
        made.append(str(answer["id"]))

    batch_uri = urljoin(local.api_url, batch_path())
    works = g.teacher.courses().courseWork()
    for first in range(0, 1001, 50):  # one more than the local Classroom's page, 50 a batch
        batch = BatchHttpRequest(callback=keep, batch_uri=batch_uri)
        for n in range(first, min(first + 50, 1001)):
            body = {"title": f"Work {n:04d}", "workType": "ASSIGNMENT", "state": "PUBLISHED"}
            batch.add(works.create(courseId=g.course_id, body=body | {"maxPoints": 10}))
        batch.execute()
    assert len(made) == 1001

    # The first pull: the teacher makes work while it lists, which shifts an item of the page
    # read onto the next page: listed twice, it is pulled once.
    meanwhile: list[str] = []

    def teacher_works_meanwhile(attempt: CallAttempt) -> None:
        if "courseWork.list" in attempt.call and not meanwhile:
            meanwhile.append(g.add_work("Made meanwhile"))

    deleted: list[str] = []

    def teacher_deletes_meanwhile(attempt: CallAttempt) -> None:
        if "courseWork.list" in attempt.call and not deleted:
            deleted.append(made[-1])
            g.delete_work(made[-1])  # the newest of those pulled: on the first page, read

    def pull_with(observer: Callable[[CallAttempt], None]) -> GooglePullReport:
        client = open_classroom_client(classroom)
        client.call_observers.append(observer)
        try:
            return pull_grades(classroom, g.world.teacher, class_ids=[g.class_id], client=client)
        finally:
            client.close()

    def titles() -> Counter[str]:
        with classroom.session() as session:
            return Counter(w.title for w in session.scalars(select(Coursework)))

    first = pull_with(teacher_works_meanwhile)
    assert meanwhile and first.courses[0].coursework["created"] == 1001
    assert titles().most_common(1)[0][1] == 1 and sum(titles().values()) == 1001

    second = pull_with(teacher_deletes_meanwhile)
    assert deleted and second.courses[0].coursework["deleted"] == 0
    with classroom.session() as session:
        states = {w.title: w.state for w in session.scalars(select(Coursework))}
    assert set(states.values()) == {CourseworkState.PUBLISHED}  # shifted out, still there
    assert len(states) == 1002
    third = pull_grades(classroom, g.world.teacher, class_ids=[g.class_id])
    assert third.courses[0].coursework["deleted"] == 1
    with classroom.session() as session:
        states = {w.title: w.state for w in session.scalars(select(Coursework))}
    assert [t for t, state in states.items() if state == CourseworkState.DELETED] == ["Work 1000"]
