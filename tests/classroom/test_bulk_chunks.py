"""An enrolment page bigger than one lookup chunk is decided as one read at once would."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select
from tests.classroom.test_bulk import STUDENT, TEACHER, load_structure

from sislink.classroom import bulk
from sislink.classroom.bulk import EnrolmentRow, PersonRow, upsert_enrolments, upsert_people
from sislink.classroom.db import Classroom
from sislink.classroom.models import Class, Enrolment, EnrolmentRole, Person


@pytest.fixture(params=[2, bulk.LOOKUP_CHUNK], ids=["chunks_of_2", "one_chunk"])
def chunk_size(request: pytest.FixtureRequest) -> Iterator[int]:
    defaults = bulk._chunks.__defaults__
    bulk._chunks.__defaults__ = (request.param,)
    try:
        yield request.param
    finally:
        bulk._chunks.__defaults__ = defaults


def test_a_renumbered_a_duplicate_and_primary_teachers_across_lookup_chunks(
    classroom: Classroom, chunk_size: int
) -> None:
    load_structure(classroom)
    with classroom.transaction() as session:
        upsert_people(
            session,
            [
                *[PersonRow(f"p-{i}", f"P {i}", roles=STUDENT) for i in range(9)],
                PersonRow("p-t2", "T2", roles=TEACHER),
            ],
        )
        upsert_enrolments(
            session,
            [
                EnrolmentRow(f"e-{i}", f"cls-{1 + i % 2}", f"p-{i}", EnrolmentRole.STUDENT)
                for i in range(9)
            ],
        )
    page = [
        EnrolmentRow("e-0-new", "cls-1", "p-0", EnrolmentRole.STUDENT),  # e-0 re-numbered
        EnrolmentRow("e-dup", "cls-2", "p-1", EnrolmentRole.STUDENT),  # e-1's place, still sent
        *[
            EnrolmentRow(f"e-{i}", f"cls-{1 + i % 2}", f"p-{i}", EnrolmentRole.STUDENT)
            for i in range(1, 9)
        ],
        EnrolmentRow("e-t", "cls-1", "p-t", EnrolmentRole.TEACHER, True),
        EnrolmentRow("e-t2", "cls-1", "p-t2", EnrolmentRole.TEACHER, True),  # the last wins
        EnrolmentRow("e-x", "cls-2", "p-t2", EnrolmentRole.TEACHER, True),
    ]
    with classroom.transaction() as session:
        counts = upsert_enrolments(session, page, sent_now={row.sourced_id for row in page})
    assert (counts.created, counts.updated, counts.unchanged) == (3, 1, 8)
    assert [skipped.sourced_id for skipped in counts.skipped] == ["e-dup"]
    assert "'e-1'" in counts.skipped[0].reason
    with classroom.session() as session:
        ids = dict(session.execute(select(Person.sis_sourced_id, Person.id)).all())
        enrolled = set(session.scalars(select(Enrolment.sis_sourced_id)))
        teachers = dict(
            session.execute(select(Class.sis_sourced_id, Class.primary_teacher_id)).all()
        )
    assert enrolled == {"e-0-new", *(f"e-{i}" for i in range(1, 9)), "e-t", "e-t2", "e-x"}
    assert teachers == {"cls-1": ids["p-t2"], "cls-2": ids["p-t2"]}
