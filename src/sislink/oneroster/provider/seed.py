"""A deterministic synthetic school district for the built-in SIS: same seed, same data, byte for byte.

One district, its schools (high and middle schools, one per ~1,000 students by default), a school
year that contains `today` (1 August to 31 July, so any day belongs to exactly one year), two
semesters (terms) with two grading periods each, per school a course catalogue (8 subjects per
grade), classes (~0.16 per student, ~50 students each), teachers (~1 per 20 students, 3 to 4
classes each), students (each in one class per subject of their grade: 8 enrolments), one
primary teacher enrolment per class, and three gradebook categories per class.

Records are produced lazily as 1.2 wire dicts and written through `store.insert_many` inside
`store.bulk_load()`, so memory stays flat whatever the district's size. Their GUIDRefs carry
sourcedId and type; the store adds each href (relative to the root the server is reached on).

Identifiers are readable and stable: `org-district`, `org-sch-001`, `as-2026`, `as-2026-s1`,
`as-2026-s1-gp1`, `crs-001-01`, `cls-00001`, `tch-00001` (after `staff_id_prefix`, e.g. Aeries'
`TCH_`), `stu-000001`, `enr-0000001`, `cat-00001-1`.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from sislink.seeddata import FIRST_NAMES as _FIRST_NAMES
from sislink.seeddata import LAST_NAMES as _LAST_NAMES
from sislink.seeddata import PLACES as _PLACES
from sislink.seeddata import STUDENTS_PER_SCHOOL, STUDENTS_PER_TEACHER
from sislink.seeddata import EmailLocalParts as _Emails

CATEGORY_CLASS_KEY = "classSourcedId"
"""Key in a category's metadata naming its class (the store's convention; CategoryDType has no class)."""

CLASSES_PER_STUDENT = 0.16
CATEGORIES: tuple[tuple[str, float], ...] = (
    ("Homework", 0.3),
    ("Tests", 0.5),
    ("Assignments", 0.2),
)
"""Every class's gradebook categories with their weights ("Assignments": Skyward's default)."""


class RecordSink(Protocol):
    """Where seeded records go: `ProviderStore` or anything with its bulk insert."""

    def insert_many(self, entity: str, records: Iterable[dict[str, Any]]) -> int: ...

    def bulk_load(self) -> AbstractContextManager[None]: ...


@dataclass(frozen=True)
class SeedSummary:
    """What a seeding wrote, and a teacher to sign in as (one with classes that have students)."""

    district_sourced_id: str
    school_year: str
    schools: int
    academic_sessions: int
    courses: int
    classes: int
    teachers: int
    students: int
    enrollments: int
    categories: int
    teacher_email: str
    teacher_sourced_id: str

    @property
    def users(self) -> int:
        return self.teachers + self.students

    @property
    def records(self) -> int:
        """Every record written, the district org included."""
        return (
            1
            + self.schools
            + self.academic_sessions
            + self.courses
            + self.classes
            + self.users
            + self.enrollments
            + self.categories
        )


# ---- built-in vocabulary ---------------------------------------------------------------------

# (subject, course code stem, titles by grade) per kind of school; the grade band is the titles' span.
_HIGH_GRADES = ("09", "10", "11", "12")
_MIDDLE_GRADES = ("06", "07", "08")
_HIGH_COURSES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("English Language Arts", "ENG", ("English 9", "English 10", "English 11", "English 12")),
    ("Mathematics", "MTH", ("Algebra I", "Geometry", "Algebra II", "Precalculus")),
    ("Science", "SCI", ("Biology", "Chemistry", "Physics", "Environmental Science")),
    ("Social Studies", "SOC", ("World History", "US History", "Government", "Economics")),
    ("World Languages", "SPA", ("Spanish I", "Spanish II", "Spanish III", "Spanish IV")),
    ("Fine Arts", "ART", ("Art I", "Art II", "Music Theory", "Theatre Arts")),
    ("Physical Education", "PED", ("PE 9", "PE 10", "Health", "Fitness for Life")),
    (
        "Computer Science",
        "CSC",
        ("Intro to Computing", "CS Principles", "Computer Science A", "Data Science"),
    ),
)
_MIDDLE_COURSES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("English Language Arts", "ELA", ("ELA 6", "ELA 7", "ELA 8")),
    ("Mathematics", "MTH", ("Math 6", "Math 7", "Pre-Algebra")),
    ("Science", "SCI", ("Earth Science", "Life Science", "Physical Science")),
    ("Social Studies", "SOC", ("Ancient Civilizations", "World Geography", "US History 8")),
    ("World Languages", "SPA", ("Spanish 6", "Spanish 7", "Spanish 8")),
    ("Fine Arts", "ART", ("Art 6", "Band 7", "Choir 8")),
    ("Physical Education", "PED", ("PE 6", "PE 7", "PE 8")),
    ("Technology", "TEC", ("Keyboarding", "Digital Citizenship", "Robotics")),
)


# ---- the plan: small, computed up front; the big record streams are derived from it ---------


@dataclass(frozen=True)
class _Course:
    sourced_id: str
    title: str
    code: str
    subject: str
    grade: str


@dataclass(frozen=True)
class _Class:
    number: int  # district-wide, from 1
    sourced_id: str
    course: _Course
    section: int
    teacher_id: str


@dataclass
class _School:
    number: int  # from 1
    sourced_id: str
    name: str
    grades: tuple[str, ...]
    students: int
    first_student: int  # district-wide student number of this school's first student
    teachers: list[str]  # teacher sourcedIds
    first_teacher: int
    courses: list[_Course]
    sections: list[list[_Class]]  # per course (subject-major, grade-minor), its sections


@dataclass
class _Plan:
    seed: int
    district_id: str
    district_name: str
    domain: str
    start: date
    end: date
    school_year: str
    modified: str
    schools: list[_School]
    staff_id_prefix: str

    @property
    def year_id(self) -> str:
        return f"as-{self.school_year}"


def school_year_bounds(today: date) -> tuple[date, date]:
    """The school year containing `today`: 1 August to 31 July."""
    first = today.year if today.month >= 8 else today.year - 1
    return date(first, 8, 1), date(first + 1, 7, 31)


def _plan(
    *,
    seed: int,
    schools: int | None,
    students: int,
    today: date,
    staff_id_prefix: str,
) -> _Plan:
    if students < 1:
        raise ValueError(f"A district needs at least one student; got students={students}")
    n_schools = schools if schools is not None else max(1, round(students / STUDENTS_PER_SCHOOL))
    if n_schools < 1:
        raise ValueError(f"A district needs at least one school; got schools={n_schools}")
    rng = random.Random(seed)
    place = rng.choice(_PLACES)
    slug = place.lower().replace(" ", "")
    start, end = school_year_bounds(today)
    school_names = list(_PLACES)
    rng.shuffle(school_names)

    plan_schools: list[_School] = []
    next_student = next_teacher = next_class = 1
    for i in range(n_schools):
        count = students // n_schools + (1 if i < students % n_schools else 0)
        high = i % 2 == 0
        catalogue = _HIGH_COURSES if high else _MIDDLE_COURSES
        grades = _HIGH_GRADES if high else _MIDDLE_GRADES
        kind = "High School" if high else "Middle School"
        base = school_names[i % len(school_names)]
        name = f"{base} {kind}" + (
            f" {i // len(school_names) + 1}" if i >= len(school_names) else ""
        )
        number = i + 1
        courses = [
            _Course(
                sourced_id=f"crs-{number:03d}-{s * len(grades) + g + 1:02d}",
                title=titles[g],
                code=f"{stem}{grades[g]}",
                subject=subject,
                grade=grades[g],
            )
            for s, (subject, stem, titles) in enumerate(catalogue)
            for g in range(len(grades))
        ]
        n_classes = max(len(courses), round(count * CLASSES_PER_STUDENT))
        n_teachers = max(1, round(count / STUDENTS_PER_TEACHER))
        teachers = [f"{staff_id_prefix}tch-{next_teacher + t:05d}" for t in range(n_teachers)]
        sections: list[list[_Class]] = []
        local = 0
        for k, course in enumerate(courses):
            per_course = n_classes // len(courses) + (1 if k < n_classes % len(courses) else 0)
            row = []
            for section in range(per_course):
                # Contiguous runs of classes per teacher: a teacher mostly teaches one subject.
                teacher = teachers[local * n_teachers // n_classes]
                row.append(_Class(next_class, f"cls-{next_class:05d}", course, section, teacher))
                next_class += 1
                local += 1
            sections.append(row)
        plan_schools.append(
            _School(
                number=number,
                sourced_id=f"org-sch-{number:03d}",
                name=name,
                grades=grades,
                students=count,
                first_student=next_student,
                teachers=teachers,
                first_teacher=next_teacher,
                courses=courses,
                sections=sections,
            )
        )
        next_student += count
        next_teacher += n_teachers
    return _Plan(
        seed=seed,
        district_id="org-district",
        district_name=f"{place} Unified School District",
        domain=f"{slug}.example.org",
        start=start,
        end=end,
        school_year=str(end.year),
        # Every record was "last modified" the day before the year began: stable, and in the past.
        modified=f"{start.year}-07-31T12:00:00.000Z",
        schools=plan_schools,
        staff_id_prefix=staff_id_prefix,
    )


def _student_classes(school: _School, position: int) -> Iterator[_Class]:
    """The classes of a school's `position`-th student: one section per subject of their grade.

    Sections rotate with the student's place in their grade (and the subject), so classes fill
    evenly and the first section of every course has students.
    """
    n_grades = len(school.grades)
    grade = position % n_grades
    in_grade = position // n_grades
    n_subjects = len(school.courses) // n_grades
    for subject in range(n_subjects):
        row = school.sections[subject * n_grades + grade]
        yield row[(in_grade + subject) % len(row)]


# ---- record streams ------------------------------------------------------------------------


class _Writer:
    """Builds 1.2 wire dicts for one plan (GUIDRefs with sourcedId and type; the store adds hrefs)."""

    def __init__(self, plan: _Plan) -> None:
        self.plan = plan

    def ref(self, ref_type: str, sourced_id: str) -> dict[str, str]:
        return {"sourcedId": sourced_id, "type": ref_type}

    def base(self, sourced_id: str) -> dict[str, Any]:
        return {"sourcedId": sourced_id, "status": "active", "dateLastModified": self.plan.modified}

    # -- rostering --

    def orgs(self) -> Iterator[dict[str, Any]]:
        plan = self.plan
        yield {
            **self.base(plan.district_id),
            "name": plan.district_name,
            "type": "district",
            "identifier": f"D{plan.seed:04d}",
            "children": [self.ref("org", s.sourced_id) for s in plan.schools],
        }
        for school in plan.schools:
            yield {
                **self.base(school.sourced_id),
                "name": school.name,
                "type": "school",
                "identifier": f"{school.number:04d}",
                "parent": self.ref("org", plan.district_id),
            }

    def sessions(self) -> Iterator[dict[str, Any]]:
        plan = self.plan
        y1, y2 = plan.start.year, plan.end.year
        terms = (
            (
                "s1",
                f"Fall Semester {y1}",
                date(y1, 8, 1),
                date(y1, 12, 31),
                (("Quarter 1", date(y1, 8, 1), date(y1, 10, 15)),
                 ("Quarter 2", date(y1, 10, 16), date(y1, 12, 31))),
            ),
            (
                "s2",
                f"Spring Semester {y2}",
                date(y2, 1, 1),
                date(y2, 7, 31),
                (("Quarter 3", date(y2, 1, 1), date(y2, 3, 31)),
                 ("Quarter 4", date(y2, 4, 1), date(y2, 7, 31))),
            ),
        )  # fmt: skip
        year_id = plan.year_id
        yield {
            **self.base(year_id),
            "title": f"{y1}-{y2} School Year",
            "startDate": plan.start.isoformat(),
            "endDate": plan.end.isoformat(),
            "type": "schoolYear",
            "schoolYear": plan.school_year,
            "children": [self.ref("academicSession", f"{year_id}-{t[0]}") for t in terms],
        }
        for key, title, start, end, periods in terms:
            term_id = f"{year_id}-{key}"
            n_before = 2 if key == "s2" else 0
            yield {
                **self.base(term_id),
                "title": title,
                "startDate": start.isoformat(),
                "endDate": end.isoformat(),
                "type": "term",
                "schoolYear": plan.school_year,
                "parent": self.ref("academicSession", year_id),
                "children": [
                    self.ref("academicSession", f"{term_id}-gp{n_before + i + 1}")
                    for i in range(len(periods))
                ],
            }
            for i, (gp_title, gp_start, gp_end) in enumerate(periods):
                yield {
                    **self.base(f"{term_id}-gp{n_before + i + 1}"),
                    "title": gp_title,
                    "startDate": gp_start.isoformat(),
                    "endDate": gp_end.isoformat(),
                    "type": "gradingPeriod",
                    "schoolYear": plan.school_year,
                    "parent": self.ref("academicSession", term_id),
                }

    def term_ids(self) -> list[str]:
        return [f"{self.plan.year_id}-s1", f"{self.plan.year_id}-s2"]

    def courses(self) -> Iterator[dict[str, Any]]:
        for school in self.plan.schools:
            for course in school.courses:
                yield {
                    **self.base(course.sourced_id),
                    "title": course.title,
                    "courseCode": course.code,
                    "schoolYear": self.ref("academicSession", self.plan.year_id),
                    "grades": [course.grade],
                    "subjects": [course.subject],
                    "org": self.ref("org", school.sourced_id),
                }

    def classes(self) -> Iterator[dict[str, Any]]:
        terms = self.term_ids()
        for school in self.plan.schools:
            for row in school.sections:
                for cls in row:
                    course = cls.course
                    period = (cls.number - 1) % 7 + 1
                    yield {
                        **self.base(cls.sourced_id),
                        "title": f"{course.title} - Period {period}",
                        "classCode": f"{course.code}-{cls.section + 1:02d}",
                        "classType": "scheduled",
                        "location": f"Room {100 + (cls.number * 7) % 300}",
                        "grades": [course.grade],
                        "subjects": [course.subject],
                        "course": self.ref("course", course.sourced_id),
                        "school": self.ref("org", school.sourced_id),
                        "terms": [self.ref("academicSession", t) for t in terms],
                        "periods": [str(period)],
                    }

    def users(self, emails: _Emails) -> Iterator[dict[str, Any]]:
        """Teachers first (school by school), then students; names from a seeded generator."""
        plan = self.plan
        rng = random.Random(plan.seed * 7919 + 1)
        for school in plan.schools:
            for t, teacher_id in enumerate(school.teachers):
                given, family = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
                number = school.first_teacher + t
                local = emails.claim(given, family)
                yield self._user(
                    teacher_id,
                    given,
                    family,
                    local,
                    f"{local}@{plan.domain}",
                    "teacher",
                    school.sourced_id,
                    identifier=f"E{number:05d}",
                    id_type="employeeId",
                    grades=None,
                )
        for school in plan.schools:
            for position in range(school.students):
                given, family = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
                number = school.first_student + position
                local = emails.claim(given, family)
                yield self._user(
                    f"stu-{number:06d}",
                    given,
                    family,
                    local,
                    f"{local}@students.{plan.domain}",
                    "student",
                    school.sourced_id,
                    identifier=f"{100000 + number}",
                    id_type="studentNumber",
                    grades=[school.grades[position % len(school.grades)]],
                )

    def _user(
        self,
        sourced_id: str,
        given: str,
        family: str,
        username: str,
        email: str,
        role: str,
        school_id: str,
        *,
        identifier: str,
        id_type: str,
        grades: list[str] | None,
    ) -> dict[str, Any]:
        record: dict[str, Any] = {
            **self.base(sourced_id),
            "enabledUser": "true",
            "username": username,
            "userIds": [{"type": id_type, "identifier": identifier}],
            "givenName": given,
            "familyName": family,
            "roles": [{"roleType": "primary", "role": role, "org": self.ref("org", school_id)}],
            "primaryOrg": self.ref("org", school_id),
            "identifier": identifier,
            "email": email,
        }
        if grades is not None:
            record["grades"] = grades
        return record

    def enrollments(self) -> Iterator[dict[str, Any]]:
        """A primary teacher per class, then every student's classes."""
        plan = self.plan
        begin, end = plan.start.isoformat(), plan.end.isoformat()
        number = 0
        for school in plan.schools:
            school_ref_id = school.sourced_id
            for row in school.sections:
                for cls in row:
                    number += 1
                    yield self._enrollment(
                        number, cls.teacher_id, cls.sourced_id, school_ref_id, "teacher", begin, end
                    )
        for school in plan.schools:
            for position in range(school.students):
                student_id = f"stu-{school.first_student + position:06d}"
                for cls in _student_classes(school, position):
                    number += 1
                    yield self._enrollment(
                        number, student_id, cls.sourced_id, school.sourced_id, "student", begin, end
                    )

    def _enrollment(
        self, number: int, user: str, cls: str, school: str, role: str, begin: str, end: str
    ) -> dict[str, Any]:
        # Written out in full: this runs 400,000 times for a 50,000-student district.
        record: dict[str, Any] = {
            "sourcedId": f"enr-{number:07d}",
            "status": "active",
            "dateLastModified": self.plan.modified,
            "user": {"sourcedId": user, "type": "user"},
            "class": {"sourcedId": cls, "type": "class"},
            "school": {"sourcedId": school, "type": "org"},
            "role": role,
        }
        if role == "teacher":
            record["primary"] = "true"
        record["beginDate"] = begin
        record["endDate"] = end
        return record

    # -- gradebook --

    def categories(self) -> Iterator[dict[str, Any]]:
        for school in self.plan.schools:
            for row in school.sections:
                for cls in row:
                    for k, (title, weight) in enumerate(CATEGORIES, start=1):
                        yield {
                            **self.base(f"cat-{cls.number:05d}-{k}"),
                            "metadata": {CATEGORY_CLASS_KEY: cls.sourced_id},
                            "title": title,
                            "weight": weight,
                        }


def seed_district(
    store: RecordSink,
    *,
    seed: int = 7,
    schools: int | None = None,
    students: int = 2000,
    today: date | None = None,
    staff_id_prefix: str = "",
) -> SeedSummary:
    """Write a synthetic district into `store` and say what was written.

    `schools` defaults to one per ~1,000 students; `today` (default: the real today) decides
    the school year; `staff_id_prefix` is prepended to every teacher's sourcedId (Aeries: `TCH_`).
    The same arguments always produce the same records.
    """
    plan = _plan(
        seed=seed,
        schools=schools,
        students=students,
        today=today or date.today(),
        staff_id_prefix=staff_id_prefix,
    )
    writer = _Writer(plan)
    with store.bulk_load():
        counts = {
            "org": store.insert_many("org", writer.orgs()),
            "academicSession": store.insert_many("academicSession", writer.sessions()),
            "course": store.insert_many("course", writer.courses()),
            "class": store.insert_many("class", writer.classes()),
        }
        emails = _Emails()
        counts["user"] = store.insert_many("user", writer.users(emails))
        counts["enrollment"] = store.insert_many("enrollment", writer.enrollments())
        counts["category"] = store.insert_many("category", writer.categories())

    first_school = plan.schools[0]
    first_class = first_school.sections[0][0]
    teacher_email = _email_of(plan, first_class.teacher_id)
    return SeedSummary(
        district_sourced_id=plan.district_id,
        school_year=plan.school_year,
        schools=len(plan.schools),
        academic_sessions=counts["academicSession"],
        courses=counts["course"],
        classes=counts["class"],
        teachers=sum(len(s.teachers) for s in plan.schools),
        students=students,
        enrollments=counts["enrollment"],
        categories=counts["category"],
        teacher_email=teacher_email,
        teacher_sourced_id=first_class.teacher_id,
    )


def _email_of(plan: _Plan, teacher_id: str) -> str:
    """Replay the name generator up to one teacher (teachers come first, so this is cheap)."""
    rng = random.Random(plan.seed * 7919 + 1)
    emails = _Emails()
    for school in plan.schools:
        for candidate in school.teachers:
            local = emails.claim(rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES))
            if candidate == teacher_id:
                return f"{local}@{plan.domain}"
    raise LookupError(f"No teacher {teacher_id!r} in the plan")
