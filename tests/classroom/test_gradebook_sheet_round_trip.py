"""Gradebook sheets that the classroom writes and a teacher sends back: a column names one
coursework, or none (two coursework of the class with the same title cannot be told apart, so
their column is refused, not given to either); and every mark is written as it is kept, so a
sheet sent back unchanged changes no mark."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from sislink.classroom.db import Classroom
from sislink.classroom.models import Mark
from sislink.classroom.services import coursework, gradebook_sheet, marks

if TYPE_CHECKING:
    from .conftest import School


def _work(classroom: Classroom, school: School, title: str, points: float = 10) -> int:
    with classroom.transaction() as session:
        return coursework.create_coursework(
            session, school.ada, school.class_id, title=title, max_points=points, publish=True
        ).id


def _scores(classroom: Classroom, work: int) -> dict[int, float | None]:
    with classroom.session() as session:
        return {
            m.student_id: m.score
            for m in session.scalars(select(Mark).where(Mark.coursework_id == work))
        }


def test_a_column_whose_title_two_coursework_share_is_refused_not_given_to_either(
    classroom: Classroom, school: School
) -> None:
    first = _work(classroom, school, "Reading log")
    second = _work(classroom, school, "reading  LOG")
    other = _work(classroom, school, "Essay")
    sam, _ = school.student_ids
    sheet = gradebook_sheet.read_sheet("email,Reading log,Essay\r\nsam@school.example,7,8\r\n")
    with classroom.transaction() as session:
        done = gradebook_sheet.import_sheet(session, school.ada, school.class_id, sheet)
    assert done.imported == 1
    (problem,) = done.problems
    assert (problem.row, problem.column) == (1, "Reading log")
    assert "2 coursework" in problem.problem
    assert _scores(classroom, first) == {} and _scores(classroom, second) == {}
    assert _scores(classroom, other) == {sam: 8.0}


def test_a_sheet_sent_back_unchanged_changes_no_mark(classroom: Classroom, school: School) -> None:
    work = _work(classroom, school, "Project", points=2_000_000)
    sam, tess = school.student_ids
    kept = {sam: 93.33333333, tess: 1_234_567.0}
    with classroom.transaction() as session:
        for student, score in kept.items():
            marks.set_mark(session, school.ada, work, student, score=score)
    with classroom.session() as session:
        text = gradebook_sheet.write_sheet(session, school.ada, school.class_id)
    with classroom.transaction() as session:
        done = gradebook_sheet.import_sheet(
            session, school.ada, school.class_id, gradebook_sheet.read_sheet(text)
        )
    assert done.problems == []
    assert _scores(classroom, work) == kept
