"""One Classroom course whose reads keep failing (Google answers 500 or 403 for it, after every
retry, while the rest of the domain answers) does not stop the district's roster sync: that course
is skipped with a warning that names it, says what Google said and what to do; nothing of it is
written (no member added or removed, no record changed); the job ends needs_attention; every
other course is synced; and its members do not count as removals for the shrink guard. An error
that concerns the whole connection, or most courses failing, still stops the run with Google's
sentence. Also: a declined course is warned about once, not every night. The local Classroom on
loopback makes the course fail (`LocalClassroom.fail_course`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from googleclassroom.google_world import google_service
from sislink.classroom import Classroom, open_classroom
from sislink.classroom.models import Class, GoogleCourseLink, GoogleCourseMember, JobStatus
from sislink.classroom.secrets import SecretBox
from sislink.googleclassroom import ClientSettings, ServerError, TokenRefused
from sislink.googleclassroom.errors import ApiError, Unauthenticated
from sislink.jobs import google_roster as roster_job
from sislink.jobs.runner import JobOutcome
from sislink.sync.google_roster import (
    google_connection_for_sync,
    open_google_client,
)
from sync.google_roster_world import (
    ADMIN,
    World,
    aliases,
    classroom_courses,
    district,
)

WRITES = ("create", "delete", "patch", "update", "updateGradingPeriodSettings")
INTERNAL = (500, "INTERNAL", "Internal error encountered.")
DENIED = (403, "PERMISSION_DENIED", "The caller does not have permission")


@pytest.fixture
def world(classroom: Classroom) -> Iterator[World]:
    """SQLite and PostgreSQL: what the database remembers of the skipped course matters."""
    with district(classroom) as made:
        yield made


@pytest.fixture
def sqlite_world(tmp_path: Path) -> Iterator[World]:
    opened = open_classroom(f"sqlite:///{tmp_path / 'failing.db'}", secret_box=SecretBox.generate())
    try:
        with district(opened) as made:
            yield made
    finally:
        opened.close()


def course_id(world: World, klass: Class) -> str:
    alias = aliases(world)[str(klass.sis_sourced_id)]
    return str(world.google.backend.tables["alias"][alias]["courseId"])


def two_classes_with_students(world: World) -> tuple[Class, Class]:
    roster = world.roster()
    found = [c for c in world.classes() if len(roster[str(c.sis_sourced_id)][2]) >= 3]
    assert len(found) >= 2
    return found[0], found[1]


def remembered(world: World, klass: Class) -> tuple[set[tuple[str, str]], object]:
    """The members sislink recorded for the class's course, and when it last synced it."""
    with world.classroom.session() as session:
        link = session.scalars(
            select(GoogleCourseLink).where(GoogleCourseLink.class_id == klass.id)
        ).one()
        members = {
            (str(e), str(r))
            for e, r in session.execute(
                select(GoogleCourseMember.email_key, GoogleCourseMember.role).where(
                    GoogleCourseMember.link_id == link.id
                )
            ).all()
        }
        return members, link.roster_synced_at


def writes_on(world: World) -> int:
    return sum(
        n
        for name, n in world.google.classroom.log.calls.items()
        if name.rpartition(".")[2] in WRITES
    )


def run_job(world: World, shrink_threshold: float = 0.10) -> JobOutcome:
    connection = google_connection_for_sync(world.classroom)
    fast = ClientSettings(backoff_base_s=0.01, backoff_cap_s=0.05)
    with open_google_client(world.classroom, connection, fast) as client:
        return asyncio.run(
            roster_job.run_google_roster_sync(
                world.classroom, ADMIN, client=client, shrink_threshold=shrink_threshold
            )
        )


def test_a_course_whose_students_cannot_be_read_is_skipped_and_every_other_course_synced(
    world: World,
) -> None:
    world.sync()
    failing, other = two_classes_with_students(world)
    failing_sid, other_sid = str(failing.sis_sourced_id), str(other.sis_sourced_id)
    leaving_failing = sorted(world.roster()[failing_sid][2])[0]
    leaving_other = sorted(world.roster()[other_sid][2])[0]
    world.end_enrolment(leaving_failing, failing_sid)
    world.end_enrolment(leaving_other, other_sid)
    world.import_roster()
    before_members, before_synced = remembered(world, failing)
    world.google.classroom.fail_course(
        course_id(world, failing), *INTERNAL, methods=["courses.students.list"]
    )

    outcome = run_job(world)

    assert outcome.status == JobStatus.NEEDS_ATTENTION
    report = outcome.report
    reasons = report["attention"]["reasons"]
    about = [w for w in reasons if failing.title in w]
    assert len(about) == 1 and len(reasons) == 1
    # Which course, what Google said, what to do.
    assert aliases(world)[failing_sid] in about[0]
    assert "HTTP 500" in about[0] and "nothing" in about[0]
    assert "next sync" in about[0]
    entry = next(c for c in report["courses"] if c["class_id"] == failing.id)
    assert entry["action"] == "skipped" and entry["reason"] == "not read"
    assert report["counts"]["courses"]["skipped"] == 1
    # Every other course synced: the other removal was made.
    assert report["counts"]["students"]["removed"] == 1
    in_classroom = classroom_courses(world.google)
    assert leaving_other not in in_classroom[aliases(world)[other_sid]][2]
    # Nothing of the skipped course written: its student stays, its record is as it was.
    assert leaving_failing in in_classroom[aliases(world)[failing_sid]][2]
    assert remembered(world, failing) == (before_members, before_synced)

    # Classroom answers again: the next sync finishes the course.
    world.google.classroom.failing_courses.clear()
    again = world.sync()
    assert again.warnings == [] and again.to_dict()["counts"]["students"]["removed"] == 1
    assert leaving_failing not in classroom_courses(world.google)[aliases(world)[failing_sid]][2]


def test_a_course_that_cannot_be_read_is_not_counted_as_every_member_removed(
    sqlite_world: World,
) -> None:
    world = sqlite_world
    world.sync()
    failing, _ = two_classes_with_students(world)
    students = world.roster()[str(failing.sis_sourced_id)][2]
    world.google.classroom.fail_course(
        course_id(world, failing),
        *DENIED,
        methods=["courses.teachers.list", "courses.students.list"],
    )
    seen = writes_on(world)

    report = world.sync(shrink_threshold=0.0)  # any removal at all would hold

    assert report.status == "applied" and report.held == [] and report.hold_reason is None
    counts = report.to_dict()["counts"]
    assert counts["students"]["removed"] == 0 and counts["students"]["held"] == 0
    assert counts["teachers"]["removed"] == 0
    assert writes_on(world) == seen
    assert (
        students <= classroom_courses(world.google)[aliases(world)[str(failing.sis_sourced_id)]][2]
    )
    [warning] = report.warnings
    assert failing.title in warning and "PERMISSION_DENIED" in warning
    assert "owner" in warning  # what to do: who owns the course, the administrator's rights


def test_a_course_that_cannot_be_found_again_is_skipped_not_made_twice(
    sqlite_world: World,
) -> None:
    world = sqlite_world
    world.sync()
    failing, _ = two_classes_with_students(world)
    world.google.classroom.fail_course(course_id(world, failing), *INTERNAL)
    courses = len(world.google.backend.tables["course"])

    report = world.sync()

    assert len(world.google.backend.tables["course"]) == courses  # no second course made
    assert [w for w in report.warnings if failing.title in w] == report.warnings != []
    assert report.to_dict()["counts"]["courses"]["unchanged"] == len(world.roster()) - 1


def test_most_courses_failing_stops_the_run_with_googles_sentence(sqlite_world: World) -> None:
    world = sqlite_world
    world.sync()
    for klass in world.classes():
        world.google.classroom.fail_course(course_id(world, klass), *INTERNAL)
    seen = writes_on(world)
    with pytest.raises(ServerError) as stopped:
        world.sync()
    assert "HTTP 500" in str(stopped.value) and "try again later" in str(stopped.value)
    assert writes_on(world) == seen


@pytest.mark.parametrize("in_a_row", [4, 5])
def test_five_courses_failing_in_a_row_stop_the_run_four_are_skipped(
    sqlite_world: World, in_a_row: int
) -> None:
    world = sqlite_world
    world.sync()
    in_sync_order = sorted(world.classes(), key=lambda c: (c.title, c.id))
    assert len(in_sync_order) > 20  # 5 is below the 10% share: the row decides
    failing = in_sync_order[3 : 3 + in_a_row]
    for klass in failing:
        world.google.classroom.fail_course(
            course_id(world, klass), *INTERNAL, methods=["courses.teachers.list"]
        )
    if in_a_row >= 5:
        with pytest.raises(ServerError):
            world.sync()
        return
    report = world.sync()
    assert len(report.warnings) == in_a_row
    assert {e["class_id"] for e in report.courses if e.get("reason") == "not read"} == {
        c.id for c in failing
    }


def test_an_error_of_the_whole_connection_stops_the_run_even_from_one_course(
    sqlite_world: World,
) -> None:
    world = sqlite_world
    world.sync()
    failing, _ = two_classes_with_students(world)
    world.google.classroom.fail_course(
        course_id(world, failing),
        401,
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials.",
        methods=["courses.students.list"],
    )
    seen = writes_on(world)
    with pytest.raises((Unauthenticated, TokenRefused)):
        world.sync()
    assert writes_on(world) == seen


def test_a_declined_course_is_warned_about_once_not_every_night(sqlite_world: World) -> None:
    world = sqlite_world
    world.sync()
    klass, _ = two_classes_with_students(world)
    sid = str(klass.sis_sourced_id)
    owner = world.roster()[sid][0]
    google_service(world.google, owner).courses().patch(
        id=aliases(world)[sid], updateMask="courseState", body={"courseState": "DECLINED"}
    ).execute()

    first = world.sync()
    assert len(first.warnings) == 1 and "declined" in first.warnings[0]

    second = world.sync()
    assert second.warnings == []  # a standing condition, not news: the job succeeds
    entry = next(c for c in second.courses if c["class_id"] == klass.id)
    assert entry["action"] == "skipped" and entry["reason"] == "declined"
    assert second.to_dict()["counts"]["courses"]["skipped"] == 1


def test_googles_words_about_a_skipped_course_are_cut_and_hold_no_secret(
    sqlite_world: World,
) -> None:
    """A hostile or broken answer (a page of HTML, a token in a URL) for one course: its warning
    and the report keep a short, masked extract of Google's words."""
    world = sqlite_world
    world.sync()
    failing, _ = two_classes_with_students(world)
    secret = "ya29.a0AfH6SMBsecretTOKENvalue"
    message = (
        "<html><body>"
        + "Backend error. " * 2000
        + f"see https://example.test/cb?access_token={secret}"
    )
    world.google.classroom.fail_course(
        course_id(world, failing), 500, "INTERNAL", message, methods=["courses.students.list"]
    )

    report = world.sync()

    [warning] = report.warnings
    assert failing.title in warning and "HTTP 500" in warning
    assert len(warning) < 1500
    entry = next(c for c in report.courses if c["class_id"] == failing.id)
    assert len(entry["error"]) < 1000
    assert secret not in json.dumps(report.to_dict())


def test_a_course_newly_declined_is_warned_about_again_after_a_run_that_did_not_finish(
    sqlite_world: World,
) -> None:
    """The state sislink remembers is written with the rest of the run: a run that dies after
    it read the new state (a worker killed, the database or the token lost while it writes)
    must not swallow the one warning about it."""
    world = sqlite_world
    world.sync()
    declined, other = two_classes_with_students(world)
    sid = str(declined.sis_sourced_id)
    google_service(world.google, world.roster()[sid][0]).courses().patch(
        id=aliases(world)[sid], updateMask="courseState", body={"courseState": "DECLINED"}
    ).execute()
    # A student taken out in Classroom by hand: the next sync adds them again (a write to die in).
    student = sorted(world.roster()[str(other.sis_sourced_id)][2])[0]
    world.admin_service().courses().students().delete(
        courseId=aliases(world)[str(other.sis_sourced_id)], userId=student
    ).execute()
    log = world.google.classroom.log.calls
    adds_before = log.get("courses.students.create", 0)

    class WorkerLost(Exception):
        pass

    def dies_once_writing() -> bool:
        if log.get("courses.students.create", 0) > adds_before:
            raise WorkerLost
        return False

    with pytest.raises(WorkerLost):
        world.sync(should_stop=dies_once_writing)
    assert student in classroom_courses(world.google)[aliases(world)[str(other.sis_sourced_id)]][2]

    again = world.sync()
    assert [w for w in again.warnings if "declined" in w] != []
    assert world.sync().warnings == []  # told once, in a run that finished


@pytest.mark.parametrize("google_status", ["RESOURCE_EXHAUSTED", "UNAVAILABLE"])
def test_a_course_answering_429_stops_the_run_as_the_quota_is_the_connections(
    sqlite_world: World, google_status: str
) -> None:
    world = sqlite_world
    world.sync()
    failing, _ = two_classes_with_students(world)
    world.google.classroom.fail_course(
        course_id(world, failing),
        429,
        google_status,
        "Quota exceeded for quota metric 'Requests'.",
        methods=["courses.students.list"],
    )
    seen = writes_on(world)
    with pytest.raises(ApiError) as stopped:
        world.sync()
    assert stopped.value.status == 429
    assert writes_on(world) == seen


def test_a_course_archived_restored_and_archived_again_is_warned_about_each_time(
    sqlite_world: World,
) -> None:
    world = sqlite_world
    world.sync()
    klass, _ = two_classes_with_students(world)
    alias = aliases(world)[str(klass.sis_sourced_id)]

    def set_state(state: str) -> None:
        world.admin_service().courses().patch(
            id=alias, updateMask="courseState", body={"courseState": state}
        ).execute()

    set_state("ACTIVE")  # made PROVISIONED: only an active course can be archived
    world.sync()
    set_state("ARCHIVED")
    assert ["archived" in w for w in world.sync().warnings] == [True]
    assert world.sync().warnings == []
    set_state("ACTIVE")
    assert world.sync().warnings == []
    set_state("ARCHIVED")
    assert ["archived" in w for w in world.sync().warnings] == [True]  # news again


def test_approving_a_held_sync_removes_nobody_from_a_course_it_could_not_read(
    world: World,
) -> None:
    """A held run skipped course B (not read): its leavers are not in the held list, so the
    approval cannot remove them; the approving run reads B and counts them anew."""
    run_job(world)
    held_class, skipped_class = two_classes_with_students(world)
    held_sid, skipped_sid = str(held_class.sis_sourced_id), str(skipped_class.sis_sourced_id)
    leaving_held = sorted(world.roster()[held_sid][2])[:3]
    leaving_skipped = sorted(world.roster()[skipped_sid][2])[:2]
    for email in leaving_held:
        world.end_enrolment(email, held_sid)
    for email in leaving_skipped:
        world.end_enrolment(email, skipped_sid)
    world.import_roster()
    world.google.classroom.fail_course(
        course_id(world, skipped_class), *INTERNAL, methods=["courses.students.list"]
    )

    held = run_job(world, shrink_threshold=0.001)
    assert held.status == JobStatus.ON_HOLD
    assert sorted(h["email"] for h in held.report["held"]) == leaving_held
    world.google.classroom.failing_courses.clear()

    connection = google_connection_for_sync(world.classroom)
    fast = ClientSettings(backoff_base_s=0.01, backoff_cap_s=0.05)
    with open_google_client(world.classroom, connection, fast) as client:
        approved = asyncio.run(
            roster_job.approve_hold(world.classroom, held.job_id, ADMIN, client=client)
        )
    # B's leavers were never approved: they count against the guard and are held, not removed.
    assert set(leaving_skipped) <= classroom_courses(world.google)[aliases(world)[skipped_sid]][2]
    assert approved.status == JobStatus.ON_HOLD
    assert set(leaving_skipped) <= {h["email"] for h in approved.report["held"]}
