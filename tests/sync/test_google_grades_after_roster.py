"""The whole bridge on loopback: the SIS roster imported, pushed into Google Classroom by the
roster sync, the teacher accepting the course and working in it through Google's client
library, and the grades pulled back and exported: the SIS ends up with the lineItem and the
result. The SIS's grading periods set on the course by the roster sync map back to the class's."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select

from googleclassroom.google_world import google_service
from sislink.classroom import Actor, open_classroom
from sislink.classroom.models import (
    Category,
    Class,
    ClassLink,
    Coursework,
    Enrolment,
    GoogleCourseLink,
    Person,
)
from sislink.jobs.google_grades import run_grade_pull
from sync.google_roster_world import district


def test_grades_made_in_a_course_the_roster_sync_made_reach_the_sis(tmp_path: Path) -> None:
    classroom = open_classroom(f"sqlite:///{tmp_path / 'classroom.db'}")
    with district(classroom, students=40) as world:
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
            course_id, class_id = str(link.course_id), klass.id
            periods = world.google.backend.tables["grading"][course_id]["gradingPeriods"]
            sis_class = session.scalars(
                select(ClassLink.sis_class_sourced_id).where(ClassLink.class_id == class_id)
            ).one()
            titles = sorted(
                c.title
                for c in session.scalars(select(Category).where(Category.class_id == class_id))
            )
        # Google's API cannot set grade categories: the teacher sets the SIS's in Classroom's
        # settings page (the local Classroom's stand-in for it).
        settings = world.google.backend.set_grade_categories(
            course_id, [{"name": t} for t in titles], "TOTAL_POINTS"
        )
        category = settings["gradeCategories"][0]
        as_teacher = google_service(world.google, str(teacher.email))
        period = periods[-1]
        end = period["endDate"]
        work = (
            as_teacher.courses()
            .courseWork()
            .create(
                courseId=course_id,
                body={
                    "title": "Lab report",
                    "workType": "ASSIGNMENT",
                    "state": "PUBLISHED",
                    "maxPoints": 25,
                    "dueDate": end,
                    "dueTime": {"hours": 12, "minutes": 0},
                    "gradingPeriodId": period["id"],
                    "gradeCategory": {"id": category["id"]},
                },
            )
            .execute(num_retries=3)
        )
        subs = as_teacher.courses().courseWork().studentSubmissions()
        (submission,) = subs.list(
            courseId=course_id, courseWorkId=work["id"], userId=str(student.email)
        ).execute()["studentSubmissions"]
        subs.patch(
            courseId=course_id,
            courseWorkId=work["id"],
            id=submission["id"],
            updateMask="assignedGrade,draftGrade",
            body={"assignedGrade": 21, "draftGrade": 21},
        ).execute()
        subs.return_(
            courseId=course_id, courseWorkId=work["id"], id=submission["id"], body={}
        ).execute()

        run = asyncio.run(run_grade_pull(classroom, Actor.system(), export=True))
        assert run.report is not None
        mine = next(c for c in run.report.courses if c.class_id == class_id)
        assert mine.coursework["created"] == 1 and mine.marks["created"] == 1
        with classroom.session() as session:
            pulled = session.scalars(
                select(Coursework).where(Coursework.class_id == class_id)
            ).one()
            chosen = pulled.grading_period_id
        assert chosen is not None  # the course's period, matched to the class's by title
        results = [
            r for r in world.sis.store.iter_all("result") if str(r.get("score")) in ("21", "21.0")
        ]
        said = [i.reason for e in run.report.exports if e.class_id == class_id for i in e.items]
        assert len(results) == 1, said
        line_items = [
            li
            for li in world.sis.store.iter_all("lineItem")
            if li["title"] == "Lab report" and li["class"]["sourcedId"] == sis_class
        ]
        assert len(line_items) == 1
        assert line_items[0]["gradingPeriod"]["sourcedId"] == period_sourced_id(classroom, chosen)
    classroom.close()


def period_sourced_id(classroom: object, period_id: int) -> str:
    from sislink.classroom.models import GradingPeriod

    with classroom.session() as session:  # type: ignore[attr-defined]
        found = session.get(GradingPeriod, period_id)
        assert found is not None and found.sis_sourced_id
        return str(found.sis_sourced_id)
