"""A class's Classroom course deleted in Classroom (archived, then deleted, as a district clears
Classroom at the end of a term while the SIS class is still open): the roster sync makes a new
course for the class, and the next grade pull must not take the old course's classwork, which
is not in the new course, for classwork deleted by the teacher. The SIS keeps the lineItems and
results exported from the old course. The built-in SIS and the local Classroom on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from googleclassroom.google_world import google_service
from sislink.classroom import Actor, Classroom
from sislink.classroom.models import (
    Category,
    Class,
    ClassLink,
    Coursework,
    CourseworkState,
    Enrolment,
    GoogleCourseLink,
    Person,
)
from sislink.jobs.google_grades import run_grade_pull
from sync.google_roster_world import district


def test_a_course_deleted_in_classroom_and_made_again_leaves_the_sis_its_grades(
    classroom: Classroom,
) -> None:
    with district(classroom, students=20) as world:
        world.sync(activate=True)
        with classroom.session() as session:
            link, klass = session.execute(
                select(GoogleCourseLink, Class)
                .join(Class, Class.id == GoogleCourseLink.class_id)
                .join(ClassLink, ClassLink.class_id == Class.id)
                .where(GoogleCourseLink.course_id.is_not(None))
                .order_by(Class.id)
            ).first()  # type: ignore[misc]
            teacher = session.get(Person, klass.primary_teacher_id)
            student = session.scalars(
                select(Person)
                .join(Enrolment, Enrolment.person_id == Person.id)
                .where(Enrolment.class_id == klass.id, Enrolment.role == "student")
                .order_by(Person.id)
            ).first()
            assert teacher is not None and student is not None
            old_course, class_id = str(link.course_id), klass.id
        as_teacher = google_service(world.google, str(teacher.email))
        titles = sorted(c.title for c in session_categories(classroom, class_id))
        category = world.google.backend.set_grade_categories(
            old_course, [{"name": t} for t in titles], "TOTAL_POINTS"
        )["gradeCategories"][0]
        period = world.google.backend.tables["grading"][old_course]["gradingPeriods"][-1]
        work = (
            as_teacher.courses()
            .courseWork()
            .create(
                courseId=old_course,
                body={
                    "title": "Lab report",
                    "workType": "ASSIGNMENT",
                    "state": "PUBLISHED",
                    "maxPoints": 25,
                    "dueDate": period["endDate"],
                    "dueTime": {"hours": 12, "minutes": 0},
                    "gradeCategory": {"id": category["id"]},
                },
            )
            .execute(num_retries=3)
        )
        subs = as_teacher.courses().courseWork().studentSubmissions()
        (submission,) = subs.list(
            courseId=old_course, courseWorkId=work["id"], userId=str(student.email)
        ).execute()["studentSubmissions"]
        subs.patch(
            courseId=old_course,
            courseWorkId=work["id"],
            id=submission["id"],
            updateMask="assignedGrade",
            body={"assignedGrade": 21},
        ).execute()
        subs.return_(
            courseId=old_course, courseWorkId=work["id"], id=submission["id"], body={}
        ).execute()
        run = asyncio.run(
            run_grade_pull(classroom, Actor.system(), class_ids=[class_id], export=True)
        )
        assert run.report is not None and run.report.courses[0].marks["created"] == 1

        def in_the_sis() -> tuple[int, int]:
            items = [
                li
                for li in world.sis.store.iter_all("lineItem")
                if li["title"] == "Lab report" and li.get("status") != "tobedeleted"
            ]
            results = [
                r
                for r in world.sis.store.iter_all("result")
                if str(r.get("score")) in ("21", "21.0") and r.get("status") != "tobedeleted"
            ]
            return len(items), len(results)

        said = [i.reason for e in run.report.exports for i in e.items]
        assert in_the_sis() == (1, 1), said

        # The administrator archives the course and deletes it in Classroom.
        admin = world.admin_service()
        admin.courses().patch(
            id=old_course, updateMask="courseState", body={"courseState": "ARCHIVED"}
        ).execute()
        admin.courses().delete(id=old_course).execute()
        # The SIS class is still open: the roster sync makes the class a new course.
        report = world.sync(activate=True)
        assert report.counts["courses"].created == 1
        with classroom.session() as session:
            new_course = session.scalars(
                select(GoogleCourseLink.course_id).where(GoogleCourseLink.class_id == class_id)
            ).one()
        assert new_course not in (None, old_course)

        again = asyncio.run(
            run_grade_pull(classroom, Actor.system(), class_ids=[class_id], export=True)
        )
        assert again.report is not None
        assert again.report.courses[0].coursework["deleted"] == 0
        with classroom.session() as session:
            states = session.scalars(
                select(Coursework.state).where(Coursework.class_id == class_id)
            ).all()
        assert states == [CourseworkState.PUBLISHED]
        assert in_the_sis() == (1, 1)  # what was exported from the old course stays


def session_categories(classroom: Classroom, class_id: int) -> list[Category]:
    with classroom.session() as session:
        found = list(session.scalars(select(Category).where(Category.class_id == class_id)))
        session.expunge_all()
        return found
