"""A re-import of the same rows writes nothing, whatever their ids and values hold, and one
changed value is one update: on both databases, through the writer's own SQL (ids and
values with characters that SQL, JSON, COPY or psycopg's %-parameters treat specially)."""

from __future__ import annotations

from datetime import date

from sislink.classroom.bulk import (
    ClassRow,
    CourseRow,
    EnrolmentRow,
    GradingPeriodRow,
    PersonRow,
    SchoolRow,
    TermRow,
    UpsertCounts,
    upsert_classes,
    upsert_courses,
    upsert_enrolments,
    upsert_grading_periods,
    upsert_people,
    upsert_schools,
    upsert_terms,
)
from sislink.classroom.bulk_categories import CategoryRow, upsert_categories
from sislink.classroom.db import Classroom
from sislink.classroom.models import EnrolmentRole, Role

# Characters an id or a value may carry that the writer's SQL must pass through untouched.
ODD = [
    "50%",
    "%s",
    "%(keys)s",
    "tab\there",
    "back\\slash",
    "line\nend",
    "cr\rhere",
    "\\N",
    "quote'\"",
    "é\u2028ü",
    "emoji \U0001f600",
    "  spaced  ",
    "",
]


def _load(classroom: Classroom, weight: float | None = 0.1) -> dict[str, UpsertCounts]:
    ids = [f"id-{odd}" for odd in ODD]
    with classroom.transaction() as session:
        return {
            "schools": upsert_schools(
                session,
                [SchoolRow(f"s-{i}", f"School {i}", i, n % 2 == 0) for n, i in enumerate(ids)],
            ),
            "terms": upsert_terms(
                session, [TermRow(f"t-{i}", i, date(2026, 9, 1), None, "2026") for i in ids]
            ),
            "periods": upsert_grading_periods(
                session,
                [GradingPeriodRow(f"g-{i}", i, f"t-{i}", None, date(2027, 1, 1)) for i in ids],
            ),
            "courses": upsert_courses(
                session, [CourseRow(f"c-{i}", i, None, f"s-{i}") for i in ids]
            ),
            "classes": upsert_classes(
                session, [ClassRow(f"k-{i}", i, i, f"s-{i}", f"t-{i}", f"c-{i}") for i in ids]
            ),
            "people": upsert_people(
                session,
                [
                    PersonRow(
                        f"p-{i}",
                        i or "Someone",
                        f"{n}-{i.strip()}@school.example" if n % 3 else None,
                        i,
                        None,
                        i,
                        frozenset({Role.TEACHER} if n % 2 else {Role.STUDENT, Role.TEACHER}),
                        n % 4 != 1,
                    )
                    for n, i in enumerate(ids)
                ],
            ),
            "enrolments": upsert_enrolments(
                session,
                [
                    EnrolmentRow(
                        f"e-{i}",
                        f"k-{i}",
                        f"p-{ids[(n + 1) % len(ids)]}",
                        EnrolmentRole.TEACHER if n % 2 else EnrolmentRole.STUDENT,
                        n % 2 == 1,
                        n % 5 != 2,
                    )
                    for n, i in enumerate(ids)
                ],
            ),
            "categories": upsert_categories(
                session,
                [
                    CategoryRow(f"cat-{i}", f"k-{i}", f"Homework {i}", None if n % 2 else weight)
                    for n, i in enumerate(ids)
                ],
            ),
        }


def _tally(counts: dict[str, UpsertCounts]) -> dict[str, tuple[int, int, int, int]]:
    return {
        kind: (each.created, each.updated, each.unchanged, len(each.skipped))
        for kind, each in counts.items()
    }


def test_a_reimport_of_rows_with_odd_characters_is_unchanged_and_a_change_is_an_update(
    classroom: Classroom,
) -> None:
    first = _tally(_load(classroom))
    assert set(first.values()) == {(len(ODD), 0, 0, 0)}, first
    again = _tally(_load(classroom))
    assert set(again.values()) == {(0, 0, len(ODD), 0)}, again
    changed = _tally(_load(classroom, weight=0.25))
    assert changed["categories"] == (0, (len(ODD) + 1) // 2, len(ODD) // 2, 0)
