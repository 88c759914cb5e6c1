"""The bulk write path's COPY on PostgreSQL: statistics kept fresh while one import grows a table."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from sislink.classroom.bulk import SchoolRow, upsert_schools
from sislink.classroom.db import Classroom


def _estimate(session: Session) -> float:
    found = session.execute(text("SELECT reltuples FROM pg_class WHERE oid = 'school'::regclass"))
    return float(found.scalar_one())


def _schools(start: int, count: int) -> list[SchoolRow]:
    return [SchoolRow(f"sch-{i}", f"School {i}") for i in range(start, start + count)]


def test_a_table_is_analysed_when_a_batch_makes_it_much_bigger_and_not_otherwise(
    classroom: Classroom,
) -> None:
    if classroom.dialect_name != "postgresql":
        pytest.skip("statistics are PostgreSQL's")
    with classroom.transaction() as session:
        upsert_schools(session, _schools(0, 100))  # never analysed: analysed now
        assert _estimate(session) == 100
        upsert_schools(session, _schools(100, 1000))  # ten times as big: analysed again
        assert _estimate(session) == 1100
        upsert_schools(session, _schools(1100, 10))  # a little bigger: not analysed
        assert _estimate(session) == 1100
        upsert_schools(session, _schools(1110, 300))  # over 1/4 of what the planner knows
        assert _estimate(session) == 1410
    with classroom.transaction() as session:  # a new transaction reads the estimate anew
        upsert_schools(session, _schools(2000, 400))
        assert _estimate(session) == 1810


def test_the_rows_of_one_batch_are_stamped_with_the_batch_s_moment(classroom: Classroom) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import select

    from sislink.classroom.bulk import PersonRow, upsert_people
    from sislink.classroom.models import Person

    before = datetime.now(UTC)
    with classroom.transaction() as session:
        upsert_people(session, [PersonRow(f"p-{i}", f"Person {i}") for i in range(3)])
    after = datetime.now(UTC)
    with classroom.session() as session:
        stamps = session.execute(
            select(Person.created_at, Person.updated_at, Person.is_admin)
        ).all()
    assert len(stamps) == 3 and len(set(stamps)) == 1
    created, updated, is_admin = stamps[0]
    assert before <= created <= updated <= after
    assert is_admin is False


def test_a_json_value_given_to_the_bulk_insert_is_stored_as_json(classroom: Classroom) -> None:
    from sqlalchemy import select

    from sislink.classroom.bulk import _insert_rows
    from sislink.classroom.models import Class

    with classroom.transaction() as session:
        rows = [
            {"title": "Maths", "sis_sourced_id": "c-1", "hand_edited_fields": ["title"]},
            {"title": "Art", "sis_sourced_id": "c-2", "hand_edited_fields": []},
        ]
        _insert_rows(session.connection(), Class.__table__, rows)  # type: ignore[arg-type]
    with classroom.session() as session:
        stored = session.execute(
            select(Class.sis_sourced_id, Class.hand_edited_fields).order_by(Class.sis_sourced_id)
        ).all()
    assert [tuple(row) for row in stored] == [("c-1", ["title"]), ("c-2", [])]
