"""`upsert_enrolments(new_rows=...)` (issue 15): pages of enrolments written into a table that
held none when the transaction began are inserted without being looked up first, and give
exactly what the usual way (each page looked up) gives for the same pages: the same rows, the
same counts, skipped rows, deferred rows and primary teachers. A page that meets a row the
import wrote before (or one made by hand meanwhile) is rolled back to its savepoint and
written the usual way, and so are the pages after it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from tests.classroom.test_bulk import STUDENT, TEACHER

from sislink.classroom import bulk
from sislink.classroom.bulk import (
    ClassRow,
    EnrolmentRow,
    NewRows,
    PersonRow,
    SourcedIdCache,
    UpsertCounts,
    upsert_classes,
    upsert_enrolments,
    upsert_people,
)
from sislink.classroom.db import Classroom
from sislink.classroom.models import Class, Enrolment, EnrolmentRole, Person

S, T = EnrolmentRole.STUDENT, EnrolmentRole.TEACHER


def load_people_and_classes(classroom: Classroom) -> None:
    with classroom.transaction() as session:
        upsert_classes(session, [ClassRow(f"cls-{i}", f"Class {i}") for i in range(1, 5)])
        upsert_people(
            session,
            [
                *[PersonRow(f"p-{i}", f"Student {i}", roles=STUDENT) for i in range(1, 9)],
                PersonRow("t-1", "Teacher 1", roles=TEACHER),
                PersonRow("t-2", "Teacher 2", roles=TEACHER),
            ],
        )


def e(
    sourced_id: str, cls: int, person: str, role: EnrolmentRole = S, primary: bool = False
) -> EnrolmentRow:
    return EnrolmentRow(sourced_id, f"cls-{cls}", person, role, primary)


def plain_pages() -> list[list[EnrolmentRow]]:
    return [
        [e("e-1", 1, "p-1"), e("e-2", 1, "p-2"), e("e-t1", 1, "t-1", T, True)],
        [e("e-3", 2, "p-3"), e("e-t2", 2, "t-2", T, True), e("e-x", 9, "p-1")],  # no class 9
        [e("e-4", 3, "p-4"), e("e-5", 3, "nobody")],  # no such person
    ]


# Pages of a SIS that repeats itself across pages, each with what the usual way does with it.
CASES: dict[str, list[list[EnrolmentRow]]] = {
    "plain": plain_pages(),
    "one_id_again_unchanged": [*plain_pages(), [e("e-1", 1, "p-1"), e("e-6", 4, "p-6")]],
    "one_id_again_changed": [*plain_pages(), [e("e-t1", 1, "t-1", T, False)]],
    "one_id_again_elsewhere": [*plain_pages(), [e("e-2", 4, "p-2"), e("e-7", 4, "p-7")]],
    "two_ids_one_place": [*plain_pages(), [e("e-7", 4, "p-7"), e("e-1-again", 1, "p-1")]],
    "a_page_of_two_ids_one_place_one_seen_before_elsewhere": [
        *plain_pages(),
        [e("e-new", 4, "p-8"), e("e-1", 4, "p-8")],  # e-1 was p-1's in class 1
    ],
    "pages_after_a_conflict": [
        *plain_pages(),
        [e("e-3", 2, "p-3")],
        [e("e-8", 4, "p-8"), e("e-t1-again", 1, "t-1", T, True)],
        [e("e-9", 4, "p-5")],
    ],
}


def write(
    session: Session, pages: Sequence[list[EnrolmentRow]], new_rows: NewRows | None
) -> list[UpsertCounts]:
    """The pages as the import writes them (`defer_held`, one cache for the import)."""
    cache = SourcedIdCache()
    return [
        upsert_enrolments(session, page, cache, defer_held=True, new_rows=new_rows)
        for page in pages
    ]


def rows_and_teachers(session: Session) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    enrolments = session.execute(
        select(
            Enrolment.sis_sourced_id,
            Class.sis_sourced_id,
            Person.sis_sourced_id,
            Enrolment.role,
            Enrolment.is_primary,
            Enrolment.active,
        )
        .join(Class, Class.id == Enrolment.class_id)
        .join(Person, Person.id == Enrolment.person_id)
    )
    teachers = session.execute(
        select(Class.sis_sourced_id, Person.sis_sourced_id).join(
            Person, Person.id == Class.primary_teacher_id, isouter=True
        )
    )
    return {tuple(row) for row in enrolments}, {tuple(row) for row in teachers}


def outcome(counts: list[UpsertCounts]) -> list[tuple[Any, ...]]:
    return [
        (c.created, c.updated, c.unchanged, c.skipped, c.deferred, c.taken_over) for c in counts
    ]


def both_ways(
    classroom: Classroom,
    pages: Sequence[list[EnrolmentRow]],
    before: Callable[[Session], None] | None = None,
) -> dict[str, Any]:
    """Each way in a transaction rolled back: its counts per page, the rows and primary
    teachers it leaves, and how many pages it looked up."""
    found: dict[str, Any] = {}
    for way in ("usual", "new_rows"):
        new_rows = NewRows() if way == "new_rows" else None
        looked_up = 0
        real = bulk._fetch_enrolments

        def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal looked_up
            looked_up += 1
            return real(*args, **kwargs)

        bulk._fetch_enrolments = counted  # type: ignore[assignment]
        try:
            with classroom.session() as session:
                if before is not None:
                    before(session)
                counts = write(session, pages, new_rows)
                found[way] = (outcome(counts), rows_and_teachers(session))
                found[f"{way}_looked_up"] = looked_up
                found[f"{way}_still_inserting"] = new_rows is not None and new_rows.inserting
                session.rollback()
        finally:
            bulk._fetch_enrolments = real  # type: ignore[assignment]
    return found


@pytest.mark.parametrize("case", list(CASES))
def test_pages_written_without_lookups_end_as_the_usual_way_leaves_them(
    classroom: Classroom, case: str
) -> None:
    load_people_and_classes(classroom)
    pages = CASES[case]
    found = both_ways(classroom, pages)
    assert found["new_rows"] == found["usual"]
    assert found["usual_looked_up"] == len(pages)
    if case == "plain":
        assert found["new_rows_looked_up"] == 0
        assert found["new_rows_still_inserting"]
    else:
        # The page that met an earlier page's row (and those after it) looked up; a page of
        # one class, person and role twice is looked up alone.
        assert 0 < found["new_rows_looked_up"] < len(pages)
        one_page_alone = case == "a_page_of_two_ids_one_place_one_seen_before_elsewhere"
        assert found["new_rows_still_inserting"] == one_page_alone


def test_the_usual_way_gives_what_these_cases_are_about(classroom: Classroom) -> None:
    """What the cases above compare: the last pages' rows are unchanged, updated, deferred
    (moved, or a second id for one place), as the import needs them."""
    load_people_and_classes(classroom)
    with classroom.session() as session:
        last = {case: write(session, CASES[case], None)[-1] for case in CASES if case != "plain"}
        session.rollback()
    assert last["one_id_again_unchanged"].unchanged == 1
    assert last["one_id_again_changed"].updated == 1
    assert [row.sourced_id for row in last["one_id_again_elsewhere"].deferred] == ["e-2"]
    assert [row.sourced_id for row in last["two_ids_one_place"].deferred] == ["e-1-again"]
    moved_one = last["a_page_of_two_ids_one_place_one_seen_before_elsewhere"]
    assert [row.sourced_id for row in moved_one.deferred] == ["e-1"]
    assert moved_one.created == 1


def test_a_row_made_by_hand_meanwhile_is_adopted_as_the_usual_way_adopts_it(
    classroom: Classroom,
) -> None:
    """The table held nothing when the import began, but a teacher enrolled a student since
    (PostgreSQL lets them): the SIS's enrolment for that place adopts the row either way."""
    load_people_and_classes(classroom)

    def enrol_by_hand(session: Session) -> None:
        class_id = session.scalars(select(Class.id).where(Class.sis_sourced_id == "cls-2")).one()
        person_id = session.scalars(select(Person.id).where(Person.sis_sourced_id == "p-3")).one()
        session.add(Enrolment(class_id=class_id, person_id=person_id, role=S))
        session.flush()

    found = both_ways(classroom, plain_pages(), before=enrol_by_hand)
    assert found["new_rows"] == found["usual"]
    assert found["new_rows"][0][1][:3] == (1, 1, 0)  # e-t2 created, e-3 adopted the row
    assert not found["new_rows_still_inserting"]
