"""The seeded district: deterministic, sized as asked, valid OneRoster 1.2, and usable by a teacher."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from functools import cache
from typing import Any

import jsonschema
import pytest

from conftest import OPENAPI_DIR
from sislink.oneroster.provider.seed import CATEGORY_CLASS_KEY, SeedSummary, seed_district
from sislink.oneroster.provider.store import ProviderStore
from sislink.oneroster.versions import spec_for

OPENAPI = OPENAPI_DIR
SEEDED = ("org", "academicSession", "course", "class", "user", "enrollment", "category")
SCHEMAS = {
    "org": ("rostering", "OrgDType"),
    "academicSession": ("rostering", "AcademicSessionDType"),
    "course": ("rostering", "CourseDType"),
    "class": ("rostering", "ClassDType"),
    "user": ("rostering", "UserDType"),
    "enrollment": ("rostering", "EnrollmentDType"),
    "category": ("gradebook", "CategoryDType"),
}
TODAY = date(2026, 3, 1)


@cache
def _validator(entity: str) -> jsonschema.Draft7Validator:
    service, name = SCHEMAS[entity]
    document = json.loads((OPENAPI / f"{service}.json").read_text())
    schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())


def _seeded(**kwargs: Any) -> tuple[SeedSummary, dict[str, list[dict[str, Any]]]]:
    store = ProviderStore()
    try:
        summary = seed_district(store, **kwargs)
        return summary, {entity: list(store.iter_all(entity)) for entity in SEEDED}
    finally:
        store.close()


@pytest.fixture(scope="module")
def district() -> tuple[SeedSummary, dict[str, list[dict[str, Any]]]]:
    return _seeded(seed=7, students=1200, today=TODAY)


def test_the_same_seed_gives_the_same_district_byte_for_byte() -> None:
    _, first = _seeded(seed=11, students=700, today=TODAY)
    _, second = _seeded(seed=11, students=700, today=TODAY)
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)


def test_another_seed_gives_other_people() -> None:
    _, first = _seeded(seed=1, students=300, today=TODAY)
    _, second = _seeded(seed=2, students=300, today=TODAY)
    names = [(u["givenName"], u["familyName"]) for u in first["user"]]
    assert names != [(u["givenName"], u["familyName"]) for u in second["user"]]


@pytest.mark.parametrize("students", [1000, 4000])
def test_counts_scale_with_the_number_of_students(students: int) -> None:
    summary, records = _seeded(students=students, today=TODAY)
    assert summary.schools == students // 1000
    assert summary.students == students
    assert summary.teachers == students // 20
    assert summary.classes == pytest.approx(students * 0.16, rel=0.05)
    # Eight classes per student, plus one primary teacher per class.
    assert summary.enrollments == 8 * students + summary.classes
    assert summary.categories == 3 * summary.classes
    roles = Counter(u["roles"][0]["role"] for u in records["user"])
    assert roles == {"student": students, "teacher": summary.teachers}
    assert len(records["enrollment"]) == summary.enrollments
    assert len(records["class"]) == summary.classes
    assert len(records["org"]) == summary.schools + 1


def test_explicit_school_count_is_honoured() -> None:
    summary, records = _seeded(students=900, schools=3, today=TODAY)
    assert summary.schools == 3
    assert sum(1 for o in records["org"] if o["type"] == "school") == 3


@pytest.mark.parametrize("entity", SEEDED)
def test_every_seeded_record_is_valid_against_the_official_openapi_and_the_models(
    district: tuple[SeedSummary, dict[str, list[dict[str, Any]]]], entity: str
) -> None:
    _, records = district
    # Every record of the small kinds; a spread sample of the big ones.
    sample = records[entity] if len(records[entity]) <= 2000 else records[entity][::37]
    spec = spec_for("1.2")
    for record in sample:
        errors = sorted(_validator(entity).iter_errors(record), key=str)
        assert not errors, f"{entity} {record['sourcedId']}: {errors[0].message}"
        spec.from_wire(entity, record)


def test_todays_date_falls_in_the_school_year_a_term_and_a_grading_period() -> None:
    for today in (date(2025, 8, 1), date(2025, 12, 31), date(2026, 1, 1), date(2026, 7, 31)):
        _, records = _seeded(students=50, today=today)
        sessions = records["academicSession"]
        for kind in ("schoolYear", "term", "gradingPeriod"):
            containing = [
                s
                for s in sessions
                if s["type"] == kind
                and date.fromisoformat(s["startDate"]) <= today <= date.fromisoformat(s["endDate"])
            ]
            assert len(containing) == 1, (today, kind)
        assert {s["schoolYear"] for s in sessions} == {"2026"}


def test_grading_periods_belong_to_terms_and_sit_inside_them(
    district: tuple[SeedSummary, dict[str, list[dict[str, Any]]]],
) -> None:
    _, records = district
    sessions = {s["sourcedId"]: s for s in records["academicSession"]}
    periods = [s for s in sessions.values() if s["type"] == "gradingPeriod"]
    terms = [s for s in sessions.values() if s["type"] == "term"]
    assert len(terms) == 2
    assert len(periods) == 4
    for period in periods:
        term = sessions[period["parent"]["sourcedId"]]
        assert term["type"] == "term"
        assert term["startDate"] <= period["startDate"] <= period["endDate"] <= term["endDate"]
        assert period["parent"]["type"] == "academicSession"
        assert any(c["sourcedId"] == period["sourcedId"] for c in term["children"])


def test_emails_are_unique_and_lowercase(
    district: tuple[SeedSummary, dict[str, list[dict[str, Any]]]],
) -> None:
    _, records = district
    emails = [u["email"] for u in records["user"]]
    assert all(email == email.lower() and "@" in email for email in emails)
    assert len(set(emails)) == len(emails)
    usernames = [u["username"] for u in records["user"]]
    assert len(set(usernames)) == len(usernames)


def test_every_reference_points_at_a_seeded_object(
    district: tuple[SeedSummary, dict[str, list[dict[str, Any]]]],
) -> None:
    _, records = district
    ids = {entity: {r["sourcedId"] for r in rows} for entity, rows in records.items()}
    for klass in records["class"]:
        assert klass["course"]["sourcedId"] in ids["course"]
        assert klass["school"]["sourcedId"] in ids["org"]
        assert {t["sourcedId"] for t in klass["terms"]} <= ids["academicSession"]
    for enrollment in records["enrollment"]:
        assert enrollment["user"]["sourcedId"] in ids["user"]
        assert enrollment["class"]["sourcedId"] in ids["class"]
    for category in records["category"]:
        assert category["metadata"][CATEGORY_CLASS_KEY] in ids["class"]
    for user in records["user"]:
        assert user["roles"][0]["org"]["sourcedId"] in ids["org"]


def test_each_class_has_one_primary_teacher_and_each_student_eight_classes(
    district: tuple[SeedSummary, dict[str, list[dict[str, Any]]]],
) -> None:
    summary, records = district
    teachers = Counter(
        e["class"]["sourcedId"] for e in records["enrollment"] if e["role"] == "teacher"
    )
    assert set(teachers.values()) == {1}
    assert len(teachers) == summary.classes
    per_student = Counter(
        e["user"]["sourcedId"] for e in records["enrollment"] if e["role"] == "student"
    )
    assert set(per_student.values()) == {8}


def test_the_summary_teacher_has_classes_with_students(
    district: tuple[SeedSummary, dict[str, list[dict[str, Any]]]],
) -> None:
    summary, records = district
    teacher = next(u for u in records["user"] if u["email"] == summary.teacher_email)
    assert teacher["sourcedId"] == summary.teacher_sourced_id
    assert teacher["roles"][0]["role"] == "teacher"
    taught = {
        e["class"]["sourcedId"]
        for e in records["enrollment"]
        if e["user"]["sourcedId"] == teacher["sourcedId"] and e["role"] == "teacher"
    }
    assert taught
    students = [
        e
        for e in records["enrollment"]
        if e["class"]["sourcedId"] in taught and e["role"] == "student"
    ]
    assert students
    categories = [c for c in records["category"] if c["metadata"][CATEGORY_CLASS_KEY] in taught]
    assert {c["title"] for c in categories} == {"Homework", "Tests", "Assignments"}


def test_staff_id_prefix_marks_every_teacher_and_their_enrolments() -> None:
    summary, records = _seeded(students=200, staff_id_prefix="TCH_", today=TODAY)
    teachers = [u for u in records["user"] if u["roles"][0]["role"] == "teacher"]
    assert teachers
    assert all(u["sourcedId"].startswith("TCH_") for u in teachers)
    students = [u for u in records["user"] if u["roles"][0]["role"] == "student"]
    assert not any(u["sourcedId"].startswith("TCH_") for u in students)
    teacher_enrolments = [e for e in records["enrollment"] if e["role"] == "teacher"]
    assert all(e["user"]["sourcedId"].startswith("TCH_") for e in teacher_enrolments)
    assert summary.teacher_sourced_id.startswith("TCH_")


def test_a_district_without_students_is_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="at least one student"):
        seed_district(ProviderStore(), students=0)
