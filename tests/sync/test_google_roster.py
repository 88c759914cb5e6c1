"""The roster into Google Classroom, against the built-in SIS and the local Classroom on loopback,
on SQLite and PostgreSQL: one course per class found again by its alias, Classroom equal to the
SIS, only differences written, only sislink's own members removed, everything else reported."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, update

from googleclassroom.google_world import google_service, new_course, students_of
from sislink.classroom import Classroom, open_classroom
from sislink.classroom.models import (
    Class,
    Enrolment,
    GoogleCourseLink,
    GoogleCourseMember,
    GradingPeriod,
    Person,
)
from sislink.classroom.secrets import SecretBox
from sislink.classroom.services import connections
from sislink.sync import google_connection
from sync.google_roster_world import (
    ADMIN,
    World,
    aliases,
    classroom_courses,
    classroom_matches_the_sis,
    connect_google,
    district,
)

WRITES = ("create", "delete", "patch", "update", "updateGradingPeriodSettings")


@pytest.fixture
def world(classroom: Classroom) -> Iterator[World]:
    """On SQLite and PostgreSQL: for the rules where the database's part matters (the links,
    the members sislink placed, the hold)."""
    with district(classroom) as made:
        yield made


@pytest.fixture
def sqlite_world(tmp_path: Path) -> Iterator[World]:
    """On SQLite only: rules decided by what Classroom holds (keeps the suite's time down)."""
    opened = open_classroom(f"sqlite:///{tmp_path / 'roster.db'}", secret_box=SecretBox.generate())
    try:
        with district(opened) as made:
            yield made
    finally:
        opened.close()


def writes_seen(world: World) -> int:
    """Write calls the local Classroom received (its own count, not sislink's)."""
    return sum(
        n
        for name, n in world.google.classroom.log.calls.items()
        if name.rpartition(".")[2] in WRITES
    )


def a_class_with_students(world: World) -> tuple[Class, list[str]]:
    with world.classroom.session() as session:
        for klass in session.scalars(select(Class).order_by(Class.id)).all():
            emails = list(
                session.scalars(
                    select(Person.email_key)
                    .join(Enrolment, Enrolment.person_id == Person.id)
                    .where(
                        Enrolment.class_id == klass.id,
                        Enrolment.role == "student",
                        Enrolment.active.is_(True),
                    )
                    .order_by(Person.email_key)
                ).all()
            )
            if len(emails) >= 7:
                return klass, [str(e) for e in emails]
    raise AssertionError("no class with students")


def test_first_sync_makes_a_course_per_class_equal_to_the_sis_and_again_writes_nothing(
    world: World,
) -> None:
    report = world.sync()
    counts = report.to_dict()["counts"]
    classes = len(world.roster())
    assert counts["courses"]["created"] == classes and report.status == "applied"
    assert counts["students"]["created"] == sum(len(s) for _, _, s in world.roster().values())
    assert report.warnings == []
    classroom_matches_the_sis(world)
    backend = world.google.backend
    klass = world.classes()[0]
    course_id = backend.tables["alias"][aliases(world)[str(klass.sis_sourced_id)]]["courseId"]
    course = backend.tables["course"][course_id]
    assert course["courseState"] == "PROVISIONED"
    assert (course["name"], course.get("section")) == (klass.title, klass.section)
    with world.classroom.session() as session:
        periods = session.scalars(
            select(GradingPeriod).where(GradingPeriod.term_id == klass.term_id)
        ).all()
        assert session.scalar(select(func.count()).select_from(GoogleCourseLink)) == classes
    titles = [p["title"] for p in backend.tables["grading"][course_id]["gradingPeriods"]]
    assert titles and sorted(titles) == sorted(p.title for p in periods)

    seen = writes_seen(world)
    again = world.sync()
    assert again.writes == 0 and writes_seen(world) == seen
    assert again.to_dict()["counts"]["courses"]["unchanged"] == classes
    assert again.to_dict()["counts"]["students"]["created"] == 0


def test_a_dry_run_writes_nothing_to_classroom_or_the_database(sqlite_world: World) -> None:
    report = sqlite_world.sync(dry_run=True)
    assert report.status == "dry_run" and report.writes == 0
    assert report.to_dict()["counts"]["courses"]["created"] == len(sqlite_world.roster())
    assert sqlite_world.google.backend.tables["course"] == {}
    assert writes_seen(sqlite_world) == 0
    with sqlite_world.classroom.session() as session:
        assert session.scalar(select(func.count()).select_from(GoogleCourseLink)) == 0

    sqlite_world.sync()
    klass, emails = a_class_with_students(sqlite_world)
    sqlite_world.end_enrolment(emails[0], str(klass.sis_sourced_id))
    sqlite_world.import_roster()
    seen = writes_seen(sqlite_world)
    planned = sqlite_world.sync(dry_run=True)
    assert planned.to_dict()["counts"]["students"]["removed"] == 1
    assert writes_seen(sqlite_world) == seen
    assert (
        emails[0]
        in classroom_courses(sqlite_world.google)[aliases(sqlite_world)[str(klass.sis_sourced_id)]][
            2
        ]
    )


def test_the_course_is_found_again_by_its_alias_after_the_database_forgets_it_or_a_reconnect(
    world: World,
) -> None:
    world.sync()
    ids_before = dict(world.google.backend.tables["alias"])
    with world.classroom.transaction() as session:
        session.execute(delete(GoogleCourseLink))
    found = world.sync()
    assert found.to_dict()["counts"]["courses"]["created"] == 0 and found.writes == 0
    assert world.google.backend.tables["alias"] == ids_before

    google_connection.disconnect(world.classroom, ADMIN)
    connect_google(world.classroom, world.google)
    seen = writes_seen(world)
    after = world.sync()
    assert after.writes == 0 and writes_seen(world) == seen
    classroom_matches_the_sis(world)
    with world.classroom.session() as session:
        course_ids = set(session.scalars(select(GoogleCourseLink.course_id)).all())
    assert course_ids == {a["courseId"] for a in ids_before.values()}


def test_a_course_made_meanwhile_by_another_run_is_found_by_its_alias_not_duplicated(
    sqlite_world: World,
) -> None:
    """Another sislink process creates a course between this run's read and its create: the
    create answers 409 ALREADY_EXISTS and the course is fetched by its alias."""
    klass = sqlite_world.classes()[0]
    alias = aliases(sqlite_world)[str(klass.sis_sourced_id)]
    owner = sqlite_world.roster()[str(klass.sis_sourced_id)][0]
    admin = sqlite_world.admin_service()

    def meanwhile(step: str, done: int, total: int | None) -> None:
        if step == "courses read":
            new_course(admin, owner, alias=alias, name=klass.title)

    report = sqlite_world.sync(progress=meanwhile)
    assert report.to_dict()["counts"]["courses"]["created"] == len(sqlite_world.roster()) - 1
    classroom_matches_the_sis(sqlite_world)


def test_students_the_sis_ends_are_removed_but_never_those_a_teacher_added(world: World) -> None:
    world.sync()
    klass, emails = a_class_with_students(world)
    alias = aliases(world)[str(klass.sis_sourced_id)]
    others = [e for e in students_of(world.google, 60) if e.lower() not in emails]
    own = others[0]
    admin = world.admin_service()
    admin.courses().students().create(courseId=alias, body={"userId": own}).execute()
    world.end_enrolment(emails[0], str(klass.sis_sourced_id))
    world.import_roster()

    report = world.sync()
    counts = report.to_dict()["counts"]["students"]
    assert counts["removed"] == 1 and counts["created"] == 0
    students = classroom_courses(world.google)[alias][2]
    assert emails[0] not in students and own.lower() in students
    with world.classroom.session() as session:
        recorded = set(
            session.scalars(
                select(GoogleCourseMember.email_key)
                .join(GoogleCourseLink, GoogleCourseLink.id == GoogleCourseMember.link_id)
                .where(GoogleCourseLink.class_id == klass.id)
            ).all()
        )
    assert own.lower() not in recorded and emails[0] not in recorded and emails[1] in recorded


def test_a_teacher_rename_is_kept_and_a_course_sislink_did_not_make_is_untouched(
    sqlite_world: World,
) -> None:
    admin = sqlite_world.admin_service()
    teacher = sqlite_world.google.teacher_email
    theirs = new_course(admin, teacher, name="My own club")
    stranger = students_of(sqlite_world.google, 1)[0]
    admin.courses().students().create(courseId=theirs["id"], body={"userId": stranger}).execute()
    sqlite_world.sync()
    klass = sqlite_world.classes()[0]
    alias = aliases(sqlite_world)[str(klass.sis_sourced_id)]
    owner = sqlite_world.roster()[str(klass.sis_sourced_id)][0]
    google_service(sqlite_world.google, owner).courses().patch(
        id=alias, updateMask="name,section", body={"name": "Renamed by me", "section": "B"}
    ).execute()
    before = dict(sqlite_world.google.backend.tables["course"][theirs["id"]])
    roster_before = sqlite_world.google.backend.tables["roster"][theirs["id"]]

    sqlite_world.sync()
    backend = sqlite_world.google.backend
    course = backend.tables["course"][backend.tables["alias"][alias]["courseId"]]
    assert (course["name"], course["section"]) == ("Renamed by me", "B")
    assert backend.tables["course"][theirs["id"]] == before
    assert backend.tables["roster"][theirs["id"]] == roster_before


def test_people_outside_the_domain_and_classes_without_a_primary_teacher_are_reported(
    sqlite_world: World,
) -> None:
    classes = sqlite_world.classes()
    no_teacher, outsider_owner, with_visitor = classes[0], classes[1], classes[2]
    with sqlite_world.classroom.transaction() as session:
        session.execute(
            update(Class).where(Class.id == no_teacher.id).values(primary_teacher_id=None)
        )
        session.execute(
            update(Enrolment)
            .where(Enrolment.class_id == no_teacher.id, Enrolment.role == "teacher")
            .values(active=False)
        )
        owner = session.get(Person, outsider_owner.primary_teacher_id)
        assert owner is not None
        owner.email = owner.email_key = "guest.teacher@gmail.example.com"
        student_id = session.scalars(
            select(Enrolment.person_id).where(
                Enrolment.class_id == with_visitor.id, Enrolment.role == "student"
            )
        ).first()
        student = session.get(Person, student_id)
        assert student is not None
        student.email = student.email_key = "visitor@elsewhere.example.net"
        visitor_name, owner_name = student.name, owner.name

    report = sqlite_world.sync()
    text = "\n".join(report.warnings)
    assert f"The class {no_teacher.title} ({no_teacher.section}) has no primary teacher" in text
    assert f"{owner_name} (guest.teacher@gmail.example.com) has no Google account" in text
    assert f"{visitor_name} (visitor@elsewhere.example.net) is not in" in text
    assert "give them their" in text
    emails = {e for _, t, s in classroom_courses(sqlite_world.google).values() for e in t | s}
    assert "visitor@elsewhere.example.net" not in emails
    assert "guest.teacher@gmail.example.com" not in emails
    counts = report.to_dict()["counts"]
    theirs = [c for c in classes if c.primary_teacher_id == outsider_owner.primary_teacher_id]
    skipped = 1 + len([c for c in theirs if c.id != no_teacher.id])
    assert counts["courses"]["skipped"] == skipped
    assert counts["courses"]["created"] == len(classes) - skipped


def test_a_declined_course_is_reported_and_left_as_it_is(sqlite_world: World) -> None:
    sqlite_world.sync()
    klass, emails = a_class_with_students(sqlite_world)
    alias = aliases(sqlite_world)[str(klass.sis_sourced_id)]
    owner = sqlite_world.roster()[str(klass.sis_sourced_id)][0]
    google_service(sqlite_world.google, owner).courses().patch(
        id=alias, updateMask="courseState", body={"courseState": "DECLINED"}
    ).execute()
    sqlite_world.end_enrolment(emails[0], str(klass.sis_sourced_id))
    sqlite_world.import_roster()

    report = sqlite_world.sync()
    assert any("declined the Classroom course for " + klass.title in w for w in report.warnings)
    assert emails[0] in classroom_courses(sqlite_world.google)[alias][2]
    assert report.to_dict()["counts"]["courses"]["skipped"] == 1
    assert report.writes == 0


def test_a_new_primary_teacher_becomes_the_owner_and_co_teachers_are_added(
    sqlite_world: World,
) -> None:
    sqlite_world.sync()
    classes = sqlite_world.classes()
    klass = classes[0]
    other = next(c for c in classes if c.primary_teacher_id != klass.primary_teacher_id)
    with sqlite_world.classroom.transaction() as session:
        new_owner = session.get(Person, other.primary_teacher_id)
        old_owner = session.get(Person, klass.primary_teacher_id)
        assert new_owner is not None and old_owner is not None and new_owner.id != old_owner.id
        session.execute(
            update(Enrolment)
            .where(Enrolment.class_id == klass.id, Enrolment.role == "teacher")
            .values(is_primary=False)
        )
        session.execute(
            update(Class).where(Class.id == klass.id).values(primary_teacher_id=new_owner.id)
        )
        session.add(
            Enrolment(class_id=klass.id, person_id=new_owner.id, role="teacher", is_primary=True)
        )
        new_email, old_email = str(new_owner.email_key), str(old_owner.email_key)
        # And a co-teacher of another class: a teacher of its course, not its owner.
        third = next(
            c for c in classes if c.primary_teacher_id != new_owner.id and c.id != klass.id
        )
        session.add(Enrolment(class_id=third.id, person_id=new_owner.id, role="teacher"))
    report = sqlite_world.sync()
    courses = classroom_courses(sqlite_world.google)
    owner, teachers, _ = courses[aliases(sqlite_world)[str(klass.sis_sourced_id)]]
    assert owner == new_email and {new_email, old_email} <= teachers
    owner, teachers, _ = courses[aliases(sqlite_world)[str(third.sis_sourced_id)]]
    assert owner != new_email and new_email in teachers
    assert report.to_dict()["counts"]["courses"]["updated"] == 1
    assert report.to_dict()["counts"]["teachers"]["created"] == 2


def _students_placed(world: World) -> int:
    with world.classroom.session() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(GoogleCourseMember)
                .where(GoogleCourseMember.role == "student")
            )
            or 0
        )


def test_the_shrink_guard_holds_only_the_removals(sqlite_world: World) -> None:
    world = (
        sqlite_world  # the hold as a job, on both databases: tests/jobs/test_google_roster_job.py
    )
    world.sync()
    klass, emails = a_class_with_students(world)
    for email in emails[:6]:
        world.end_enrolment(email, str(klass.sis_sourced_id))
    world.import_roster()
    placed = _students_placed(world)
    report = world.sync(shrink_threshold=5 / placed)
    assert report.status == "on_hold"
    assert report.to_dict()["counts"]["students"]["held"] == 6
    assert report.hold_reason and "6 of the" in report.hold_reason
    alias = aliases(world)[str(klass.sis_sourced_id)]
    assert set(emails[:6]) <= classroom_courses(world.google)[alias][2]

    approved = [(h["alias"], h["email"], h["role"]) for h in report.held]
    applied = world.sync(shrink_threshold=5 / placed, approved_removals=approved)
    assert applied.status == "applied"
    assert applied.to_dict()["counts"]["students"]["removed"] == 6
    assert not set(emails[:6]) & classroom_courses(world.google)[alias][2]
    classroom_matches_the_sis(world)


def test_a_sis_reconnected_under_another_host_url_finds_the_same_courses(
    sqlite_world: World,
) -> None:
    """The alias derives from the partner and the SIS class, never the host URL (Infinite Campus
    moved every base URL once): a reconnect under a new URL makes no course twice."""
    world = sqlite_world
    world.sync()
    sis = world.sis
    with world.classroom.transaction() as session:
        again = connections.save_connection(
            session,
            ADMIN,
            world.classroom.secret_box,
            partner=sis.profile,
            version=sis.version,
            host_url=sis.host_url.replace("127.0.0.1", "localhost"),
            access_key=sis.client_id,
            secret_code=sis.client_secret,
            token_url=(sis.token_url or "").replace("127.0.0.1", "localhost") or None,
        )
        connections.mark_authorised(session, ADMIN, again.id, district_sourced_id="d1")
        world.connection_id = again.id
    world.import_roster()
    seen = writes_seen(world)
    report = world.sync()
    assert report.writes == 0 and writes_seen(world) == seen
    assert report.to_dict()["counts"]["courses"]["unchanged"] == len(world.roster())
    classroom_matches_the_sis(world)


def test_a_student_of_a_class_who_also_teaches_it_is_only_its_teacher(
    sqlite_world: World,
) -> None:
    """The SIS lists a person as a student of a class and as its teacher (the student row
    first): Classroom cannot have them as both, so they are its teacher only."""
    world = sqlite_world
    classes = world.classes()
    klass = classes[0]
    other = next(c for c in classes if c.primary_teacher_id != klass.primary_teacher_id)
    with world.classroom.transaction() as session:
        teacher = session.get(Person, other.primary_teacher_id)
        assert teacher is not None
        session.add(Enrolment(class_id=klass.id, person_id=teacher.id, role="student"))
        session.flush()
        session.add(Enrolment(class_id=klass.id, person_id=teacher.id, role="teacher"))
        email = str(teacher.email_key)

    report = world.sync()
    assert report.warnings == []
    # Never sent as a student (Classroom would refuse it, or, when the student add goes first
    # in a concurrent batch, refuse the teacher add instead).
    adds = world.google.classroom.log.calls
    expected = sum(len(s) for _, _, s in world.roster().values())
    assert sum(n for name, n in adds.items() if name.endswith("students.create")) == expected
    _, teachers, students = classroom_courses(world.google)[
        aliases(world)[str(klass.sis_sourced_id)]
    ]
    assert email in teachers and email not in students
    classroom_matches_the_sis(world)
    assert world.sync().writes == 0


def _restore_enrolment(world: World, email: str, class_sourced_id: str) -> None:
    """The SIS enrols the student in the class again (the same enrolment, active)."""
    from sislink.oneroster.models import format_datetime, utc_now

    store = world.sis.store
    user = next(u for u in store.iter_all("user") if str(u.get("email")).lower() == email)
    for record in store.iter_all("enrollment"):
        if (
            record["user"]["sourcedId"] == user["sourcedId"]
            and record["class"]["sourcedId"] == class_sourced_id
        ):
            store.put(
                "enrollment",
                dict(record, status="active", dateLastModified=format_datetime(utc_now())),
            )
            return
    raise AssertionError(f"{email} was never enrolled in {class_sourced_id}")


def test_a_student_the_teacher_added_before_the_sis_enrolled_them_is_never_removed(
    sqlite_world: World,
) -> None:
    """The teacher adds a student by hand; the SIS then enrols them too (sislink finds them
    there and adds nothing); when the SIS ends that enrolment, the teacher's addition stays."""
    world = sqlite_world
    klass, emails = a_class_with_students(world)
    sid = str(klass.sis_sourced_id)
    student = emails[0]
    world.end_enrolment(student, sid)
    world.import_roster()
    world.sync()
    alias = aliases(world)[sid]
    assert student not in classroom_courses(world.google)[alias][2]
    world.admin_service().courses().students().create(
        courseId=alias, body={"userId": student}
    ).execute()

    _restore_enrolment(world, student, sid)
    world.import_roster()
    found = world.sync()
    assert found.to_dict()["counts"]["students"]["created"] == 0 and found.writes == 0

    world.end_enrolment(student, sid)
    world.import_roster()
    after = world.sync()
    assert after.to_dict()["counts"]["students"]["removed"] == 0
    assert student in classroom_courses(world.google)[alias][2]


def test_a_class_whose_course_exists_losing_its_primary_teacher_is_reported_as_left_alone(
    sqlite_world: World,
) -> None:
    world = sqlite_world
    world.sync()
    klass = world.classes()[0]
    with world.classroom.transaction() as session:
        session.execute(update(Class).where(Class.id == klass.id).values(primary_teacher_id=None))
        session.execute(
            update(Enrolment)
            .where(Enrolment.class_id == klass.id, Enrolment.role == "teacher")
            .values(active=False)
        )
    report = world.sync()
    text = "\n".join(report.warnings)
    assert f"The class {klass.title} ({klass.section}) has no primary teacher in the SIS" in text
    assert (
        "its Classroom course was left as it is" in text
        and "no Classroom course was made" not in text
    )
    assert report.writes == 0


def test_the_shrink_guard_counts_the_students_of_the_courses_it_syncs_not_of_ended_classes(
    sqlite_world: World,
) -> None:
    """Last year's classes end in the SIS (their courses stay in Classroom, untouched): the
    students sislink once placed there do not water the guard down for this year's classes."""
    from sislink.oneroster.models import format_datetime, utc_now

    world = sqlite_world
    world.sync()
    klass, emails = a_class_with_students(world)
    sid = str(klass.sis_sourced_id)
    store = world.sis.store
    for record in list(store.iter_all("class")):
        if record["sourcedId"] != sid:
            store.put(
                "class",
                dict(record, status="tobedeleted", dateLastModified=format_datetime(utc_now())),
            )
    for email in emails[:6]:
        world.end_enrolment(email, sid)
    world.import_roster(shrink_threshold=1.0)
    in_course = len(emails)  # the students sislink placed in the one course still synced

    report = world.sync(shrink_threshold=3 / in_course)
    assert report.status == "on_hold", report.to_dict()["counts"]
    assert report.to_dict()["counts"]["students"]["held"] == 6
    assert f"6 of the {in_course} students" in (report.hold_reason or "")
    assert set(emails[:6]) <= classroom_courses(world.google)[aliases(world)[sid]][2]


def test_a_student_sislink_placed_who_now_teaches_the_class_becomes_its_teacher_in_one_sync(
    sqlite_world: World,
) -> None:
    """The SIS makes a student of a class its co-teacher (a student teacher): sislink removes
    the student it placed and adds the teacher in the same sync, without asking anyone to."""
    world = sqlite_world
    world.sync()
    klass, emails = a_class_with_students(world)
    email = emails[0]
    with world.classroom.transaction() as session:
        person_id = session.scalar(select(Person.id).where(Person.email_key == email))
        session.execute(
            update(Enrolment)
            .where(Enrolment.class_id == klass.id, Enrolment.person_id == person_id)
            .values(role="teacher", is_primary=False)
        )
    placed = _students_placed(world)
    report = world.sync(shrink_threshold=2 / placed)
    assert report.warnings == [] and report.status == "applied"
    _, teachers, students = classroom_courses(world.google)[
        aliases(world)[str(klass.sis_sourced_id)]
    ]
    assert email in teachers and email not in students
    counts = report.to_dict()["counts"]
    assert counts["students"]["removed"] == 1 and counts["teachers"]["created"] == 1
    classroom_matches_the_sis(world)
    assert world.sync().writes == 0
