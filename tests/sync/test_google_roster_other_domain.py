"""Google disconnected and connected again to ANOTHER Workspace domain (a district that moves to a
new domain, its SIS emails changed to match): the roster sync makes the courses in the new domain
and reuses nothing of the old one: no course id, no link, no record of whom sislink placed (so
nobody is removed for a record of the old domain); the old domain's Classroom is not written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from googleclassroom.google_world import students_of, teachers_of
from sislink.classroom import open_classroom
from sislink.classroom.models import Enrolment, GoogleCourseLink, GoogleCourseMember, Person
from sislink.classroom.secrets import SecretBox
from sislink.googleclassroom.emulator import running_classroom
from sislink.sync import google_connection
from sislink.sync.google_roster import course_links
from sync.google_roster_world import ADMIN, World, connect_google, district

OTHER_SEED = 8  # another district name, so another domain


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    opened = open_classroom(f"sqlite:///{tmp_path / 'moved.db'}", secret_box=SecretBox.generate())
    try:
        with district(opened) as made:
            yield made
    finally:
        opened.close()


def test_a_reconnect_to_another_domain_reuses_no_course_link_or_record_of_the_old_one(
    world: World,
) -> None:
    world.sync()
    old = world.google
    old_writes = sum(old.classroom.log.calls.values())
    classes = world.classes()
    left_behind = classes[0]  # its primary teacher gets no account in the new domain

    with running_classroom(seed=OTHER_SEED, students=30) as new:
        assert new.domain != old.domain
        google_connection.disconnect(world.classroom, ADMIN)
        connect_google(world.classroom, new)
        teachers = iter(teachers_of(new, 1000))
        students = iter(students_of(new, 1000))
        with world.classroom.transaction() as session:
            teaching = set(
                session.scalars(select(Enrolment.person_id).where(Enrolment.role == "teacher"))
            )
            kept = left_behind.primary_teacher_id
            for person in session.scalars(select(Person).order_by(Person.id)).all():
                if person.id == kept or not person.email_key:
                    continue
                email = next(teachers if person.id in teaching else students, None)
                if email is not None:
                    person.email = person.email_key = email.lower()
            # The class left behind keeps only its primary teacher, so it is skipped.
            session.execute(
                update(Enrolment)
                .where(Enrolment.class_id == left_behind.id, Enrolment.person_id != kept)
                .values(active=False)
            )
        report = world.sync()

        counts = report.to_dict()["counts"]
        skipped = {c.id for c in classes if c.primary_teacher_id == kept}
        assert counts["courses"]["skipped"] == len(skipped)
        assert counts["students"]["removed"] == 0 and counts["teachers"]["removed"] == 0
        assert counts["courses"]["created"] >= 1
        new_courses = set(new.backend.tables["course"])
        assert counts["courses"]["created"] == len(new_courses)
        with world.classroom.session() as session:
            links = session.scalars(select(GoogleCourseLink)).all()
            for link in links:
                if link.class_id in skipped:
                    continue
                if link.course_id is not None:
                    assert link.domain == new.domain and link.course_id in new_courses
            members = session.scalars(
                select(GoogleCourseMember.email_key)
                .join(GoogleCourseLink, GoogleCourseLink.id == GoogleCourseMember.link_id)
                .where(GoogleCourseLink.domain == new.domain)
            ).all()
        assert members and all(m.endswith(new.domain) for m in members)
        # What the pages show (the teacher's course link) is of the new domain only.
        shown = course_links(world.classroom)
        assert all(c["course_id"] in new_courses for c in shown.values())
        assert not skipped & set(shown)
        assert sum(old.classroom.log.calls.values()) == old_writes  # the old one untouched
