"""A classroom linked to the built-in SIS (mark_export_world) and connected to the local
Classroom, with the class's course in Classroom: made by the administrator through Google's
client library (the roster push's part), its grade categories and grading periods those of the
SIS class, the class's students in it, and the GoogleCourseLink row the roster push writes.
The teacher then works in Classroom as a teacher would, through Google's client library."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from googleapiclient.discovery import Resource
from sqlalchemy import select

from googleclassroom.google_world import google_service, new_course
from sislink.classroom import Actor, Classroom
from sislink.classroom.models import (
    GoogleCourseLink,
    GradingPeriod,
    Mark,
    Person,
)
from sislink.googleclassroom.emulator import RunningClassroom
from sislink.oneroster.provider.server import RunningProvider
from sislink.sync import google_connection
from sync.mark_export_world import World, build_world

ADMIN = Actor.system()


@dataclass
class GradesWorld:
    world: World
    local: RunningClassroom
    course_id: str
    teacher: Resource  # Google's client as the class's teacher
    emails: list[str]  # the class's students, in order
    outsider: str  # a Classroom student of the course who is not a student of the class
    categories: dict[str, str] = field(default_factory=dict)  # Classroom category id by name
    periods: list[dict[str, Any]] = field(default_factory=list)  # Classroom grading periods

    @property
    def classroom(self) -> Classroom:
        return self.world.classroom

    @property
    def class_id(self) -> int:
        return self.world.class_id

    def ahead(self, days: int = 10) -> date:
        """A day at least `days` from today inside one of the SIS class's grading periods: work
        due then is not past due (so not missing) and goes to the SIS."""
        soonest = datetime.now(UTC).date() + timedelta(days=days)
        for period in sorted(self.world.facts.grading_periods, key=lambda p: p.start_date):
            day = max(soonest, period.start_date + timedelta(days=3))
            if day <= period.end_date:
                return day
        raise AssertionError("the SIS class has no grading period ahead of today")

    def add_work(
        self,
        title: str,
        *,
        points: float | None = 10,
        due: date | None = None,
        category: str | None = "Homework",
        state: str = "PUBLISHED",
        **more: Any,
    ) -> str:
        """courseWork made by the teacher, as in Classroom."""
        day = due if due is not None else self.ahead()
        body: dict[str, Any] = {
            "title": title,
            "workType": "ASSIGNMENT",
            "state": state,
            "dueDate": {"year": day.year, "month": day.month, "day": day.day},
            "dueTime": {"hours": 23, "minutes": 0},
            **more,
        }
        if points is not None:
            body["maxPoints"] = points
        if category is not None:
            body["gradeCategory"] = {"id": self.categories[category]}
        made = (
            self.teacher.courses()
            .courseWork()
            .create(courseId=self.course_id, body=body)
            .execute(num_retries=3)
        )
        return str(made["id"])

    def submission_of(self, work_id: str, email: str) -> dict[str, Any]:
        found = (
            self.teacher.courses()
            .courseWork()
            .studentSubmissions()
            .list(courseId=self.course_id, courseWorkId=work_id, userId=email)
            .execute(num_retries=3)
        )
        (submission,) = found["studentSubmissions"]
        return dict(submission)

    def grade(
        self,
        work_id: str,
        email: str,
        *,
        draft: float | None = None,
        assigned: float | None = None,
        give_back: bool = False,
    ) -> None:
        """The teacher grades in Classroom: a draft grade, an assigned grade, and returns it."""
        submission = self.submission_of(work_id, email)
        mask = []
        body: dict[str, Any] = {}
        if draft is not None:
            mask.append("draftGrade")
            body["draftGrade"] = draft
        if assigned is not None:
            mask.append("assignedGrade")
            body["assignedGrade"] = assigned
        subs = self.teacher.courses().courseWork().studentSubmissions()
        if mask:
            subs.patch(
                courseId=self.course_id,
                courseWorkId=work_id,
                id=submission["id"],
                updateMask=",".join(mask),
                body=body,
            ).execute(num_retries=3)
        if give_back:
            subs.return_(
                courseId=self.course_id, courseWorkId=work_id, id=submission["id"], body={}
            ).execute(num_retries=3)

    def delete_work(self, work_id: str) -> None:
        self.teacher.courses().courseWork().delete(courseId=self.course_id, id=work_id).execute(
            num_retries=3
        )

    def marks(self) -> dict[tuple[str, str], Mark]:
        """The class's marks by (coursework title, student email)."""
        from sislink.classroom.models import Coursework

        with self.classroom.session() as session:
            rows = session.execute(
                select(Mark, Coursework.title, Person.email)
                .join(Coursework, Coursework.id == Mark.coursework_id)
                .join(Person, Person.id == Mark.student_id)
                .where(Coursework.class_id == self.class_id)
            ).all()
            for mark, _, _ in rows:
                session.expunge(mark)
            return {(title, str(email)): mark for mark, title, email in rows}


def connect_google(classroom: Classroom, local: RunningClassroom) -> None:
    google_connection.connect(
        classroom,
        ADMIN,
        key_file_text=local.key_file.read_text(),
        admin_email=local.admin_email,
        api_endpoint=local.api_url,
    )
    google_connection.authorise(classroom, ADMIN)


async def build_grades_world(
    sis: RunningProvider,
    classroom: Classroom,
    local: RunningClassroom,
    *,
    students: int = 4,
    class_index: int = 0,
) -> GradesWorld:
    world = await build_world(sis, classroom, students=students, class_index=class_index)
    connect_google(classroom, local)
    admin = google_service(local, local.admin_email)
    with classroom.session() as session:
        emails = [str(session.get(Person, p).email) for p in world.students]  # type: ignore[union-attr]
        # The roster import would have brought the SIS's grading periods: as it would.
        for period in world.facts.grading_periods:
            if (
                session.scalars(
                    select(GradingPeriod).where(GradingPeriod.sis_sourced_id == period.sourced_id)
                ).first()
                is None
            ):
                session.add(
                    GradingPeriod(
                        title=period.title,
                        start_date=period.start_date,
                        end_date=period.end_date,
                        sis_sourced_id=period.sourced_id,
                    )
                )
        session.commit()
    course = new_course(
        admin, world.teacher_email, name=f"Class {world.class_id}", courseState="ACTIVE"
    )
    course_id = str(course["id"])
    outsider = next(
        u.email
        for u in local.directory.users
        if u.role == "student" and u.email not in emails and u.in_domain
    )
    for email in [*emails, outsider]:
        admin.courses().students().create(courseId=course_id, body={"userId": email}).execute(
            num_retries=3
        )
    settings = local.backend.set_grade_categories(
        course_id,
        [{"name": title} for title in sorted(world.categories)] + [{"name": "Fun Extras"}],
        "TOTAL_POINTS",
    )
    categories = {c["name"]: c["id"] for c in settings["gradeCategories"]}
    grading = (
        admin.courses()
        .updateGradingPeriodSettings(
            courseId=course_id,
            updateMask="gradingPeriods",
            body={
                "gradingPeriods": [
                    {
                        "title": p.title,
                        "startDate": _google_date(p.start_date),
                        "endDate": _google_date(p.end_date),
                    }
                    for p in world.facts.grading_periods
                ]
            },
        )
        .execute(num_retries=3)
    )
    with classroom.transaction() as session:
        session.add(
            GoogleCourseLink(
                class_id=world.class_id,
                domain=local.domain,
                alias=f"sislink-test-{world.class_id}-{course_id}",
                course_id=course_id,
                course_state="ACTIVE",
                alternate_link=course.get("alternateLink"),
                owner_email=world.teacher_email,
            )
        )
    return GradesWorld(
        world=world,
        local=local,
        course_id=course_id,
        teacher=google_service(local, world.teacher_email),
        emails=emails,
        outsider=outsider,
        categories=categories,
        periods=list(grading.get("gradingPeriods", [])),
    )


def _google_date(day: date) -> dict[str, int]:
    return {"year": day.year, "month": day.month, "day": day.day}
