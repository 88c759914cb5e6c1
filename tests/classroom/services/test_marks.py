"""Marks: numbers only, extra credit allowed, students of the class only, returned on demand."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from sqlalchemy import func, select

from sislink.classroom.db import Classroom
from sislink.classroom.errors import InvalidInput, NotFound, PermissionDenied
from sislink.classroom.models import Mark, MarkState
from sislink.classroom.services import coursework, marks

if TYPE_CHECKING:
    from ..conftest import School


def make_work(classroom: Classroom, school: School, max_points: float | None = 10) -> int:
    with classroom.transaction() as session:
        return coursework.create_coursework(
            session, school.ada, school.class_id, title="Quiz", max_points=max_points
        ).id


def test_a_mark_that_is_not_a_number_is_refused_and_nothing_is_written(
    classroom: Classroom, school: School
) -> None:
    work_id = make_work(classroom, school)
    with (
        pytest.raises(InvalidInput, match="A mark of 'abc' is not a number"),
        classroom.transaction() as session,
    ):
        marks.set_mark(session, school.ada, work_id, school.student_ids[0], score="abc")
    with classroom.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Mark)) == 0


@pytest.mark.parametrize(("given", "stored"), [("8.5", 8.5), (" 7 ", 7.0), (12, 12.0), ("", None)])
def test_scores_are_stored_as_numbers_and_extra_credit_is_kept(
    classroom: Classroom, school: School, given: object, stored: float | None
) -> None:
    work_id = make_work(classroom, school)
    with classroom.transaction() as session:
        mark = marks.set_mark(
            session,
            school.ada,
            work_id,
            school.student_ids[0],
            score=given,  # type: ignore[arg-type]
        )
        assert mark.score == stored
        assert mark.state == MarkState.DRAFT


def test_negative_marks_are_refused(classroom: Classroom, school: School) -> None:
    work_id = make_work(classroom, school)
    with (
        pytest.raises(InvalidInput, match="cannot be negative"),
        classroom.transaction() as session,
    ):
        marks.set_mark(session, school.ada, work_id, school.student_ids[0], score=-1)


def test_only_students_of_the_class_get_marks(classroom: Classroom, school: School) -> None:
    work_id = make_work(classroom, school)
    assert school.brian.person_id is not None
    with (
        pytest.raises(NotFound, match="No student of this class is person"),
        classroom.transaction() as session,
    ):
        marks.set_mark(session, school.ada, work_id, school.brian.person_id, score=5)


def test_another_teacher_cannot_mark_this_class(classroom: Classroom, school: School) -> None:
    work_id = make_work(classroom, school)
    with pytest.raises(PermissionDenied), classroom.transaction() as session:
        marks.set_mark(session, school.brian, work_id, school.student_ids[0], score=5)


def test_late_and_comment_change_without_touching_the_score(
    classroom: Classroom, school: School
) -> None:
    work_id = make_work(classroom, school)
    student = school.student_ids[0]
    with classroom.transaction() as session:
        marks.set_mark(session, school.ada, work_id, student, score=9)
        mark = marks.set_mark(session, school.ada, work_id, student, late=True, comment="Ill")
        assert (mark.score, mark.excused, mark.late, mark.missing, mark.comment) == (
            9.0,
            False,
            True,
            False,
            "Ill",
        )
        assert len(marks.marks_for(session, work_id)) == 1


def _state(mark: Mark) -> tuple[float | None, bool, bool]:
    return mark.score, mark.excused, mark.missing


def test_missing_clears_an_earlier_score_and_excused(classroom: Classroom, school: School) -> None:
    work_id = make_work(classroom, school)
    scored, excused = school.student_ids
    with classroom.transaction() as session:
        marks.set_mark(session, school.ada, work_id, scored, score=9)
        marks.set_mark(session, school.ada, work_id, excused, excused=True)
        assert _state(marks.set_mark(session, school.ada, work_id, scored, missing=True)) == (
            None,
            False,
            True,
        )
        assert _state(marks.set_mark(session, school.ada, work_id, excused, missing=True)) == (
            None,
            False,
            True,
        )


def test_excused_clears_an_earlier_score_and_missing(classroom: Classroom, school: School) -> None:
    work_id = make_work(classroom, school)
    scored, missing = school.student_ids
    with classroom.transaction() as session:
        marks.set_mark(session, school.ada, work_id, scored, score=9, comment="Good")
        marks.set_mark(session, school.ada, work_id, missing, missing=True)
        excused = marks.set_mark(session, school.ada, work_id, scored, excused=True)
        assert _state(excused) == (None, True, False) and excused.comment == "Good"
        assert _state(marks.set_mark(session, school.ada, work_id, missing, excused=True)) == (
            None,
            True,
            False,
        )


def test_a_score_clears_excused_and_missing(classroom: Classroom, school: School) -> None:
    work_id = make_work(classroom, school)
    excused, missing = school.student_ids
    with classroom.transaction() as session:
        marks.set_mark(session, school.ada, work_id, excused, excused=True)
        marks.set_mark(session, school.ada, work_id, missing, missing=True)
        assert _state(marks.set_mark(session, school.ada, work_id, excused, score="7")) == (
            7.0,
            False,
            False,
        )
        assert _state(marks.set_mark(session, school.ada, work_id, missing, score=0)) == (
            0.0,
            False,
            False,
        )


@pytest.mark.parametrize(
    "values",
    [
        {"score": 5, "excused": True},
        {"score": 5, "missing": True},
        {"excused": True, "missing": True},
    ],
)
def test_two_kinds_of_mark_at_once_are_refused_and_the_mark_is_kept(
    classroom: Classroom, school: School, values: dict[str, object]
) -> None:
    work_id = make_work(classroom, school)
    student = school.student_ids[0]
    with classroom.transaction() as session:
        marks.set_mark(session, school.ada, work_id, student, score=9)
    with (
        pytest.raises(InvalidInput, match="give only one"),
        classroom.transaction() as session,
    ):
        marks.set_mark(session, school.ada, work_id, student, **values)  # type: ignore[arg-type]
    with classroom.session() as session:
        (kept,) = marks.marks_for(session, work_id)
        assert _state(kept) == (9.0, False, False)


def test_a_blank_score_with_nothing_else_clears_the_mark(
    classroom: Classroom, school: School
) -> None:
    work_id = make_work(classroom, school)
    student = school.student_ids[0]
    with classroom.transaction() as session:
        marks.set_mark(session, school.ada, work_id, student, excused=True)
        cleared = marks.set_mark(
            session, school.ada, work_id, student, score=None, excused=False, missing=False
        )
        assert _state(cleared) == (None, False, False)


def test_a_returned_mark_set_as_a_draft_is_a_draft_again(
    classroom: Classroom, school: School
) -> None:
    work_id = make_work(classroom, school)
    student = school.student_ids[0]
    with classroom.transaction() as session:
        marks.set_mark(session, school.ada, work_id, student, score=9)
        marks.return_marks(session, school.ada, work_id)
        changed = marks.set_mark(session, school.ada, work_id, student, score=4)
        assert changed.state == MarkState.RETURNED  # without draft=True the state is kept
        drafted = marks.set_mark(session, school.ada, work_id, student, score=6, draft=True)
        assert (drafted.score, drafted.state) == (6.0, MarkState.DRAFT)
        assert marks.return_marks(session, school.ada, work_id) == 1


def test_returning_marks_returns_drafts_only_once(classroom: Classroom, school: School) -> None:
    work_id = make_work(classroom, school)
    with classroom.transaction() as session:
        for student in school.student_ids:
            marks.set_mark(session, school.ada, work_id, student, score=5)
        assert marks.return_marks(session, school.ada, work_id, [school.student_ids[0]]) == 1
        assert marks.return_marks(session, school.ada, work_id) == 1
        assert marks.return_marks(session, school.ada, work_id) == 0
        assert {m.state for m in marks.marks_for(session, work_id)} == {MarkState.RETURNED}


def test_coursework_without_points_takes_no_score(classroom: Classroom, school: School) -> None:
    work_id = make_work(classroom, school, max_points=None)
    with pytest.raises(InvalidInput, match="has no max points"), classroom.transaction() as session:
        marks.set_mark(session, school.ada, work_id, school.student_ids[0], score=3)


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("1e3", "exponent notation"),
        ("1e20", "exponent notation"),
        ("2.5E-1", "exponent notation"),
        ("\u0668", "digits other than 0-9"),  # Arabic-Indic eight
        ("\u0661\u0662", "digits other than 0-9"),  # Arabic-Indic twelve
        ("\u06f7", "digits other than 0-9"),  # Persian seven
        ("\uff18", "digits other than 0-9"),  # full-width eight
        ("1_0", "not a number"),
        ("inf", "not a number"),
        ("nan", "not a number"),
        ("8,5", "has a comma"),
        ("1,000", "has a comma"),
        ("8.5.1", "not a number"),
        ("+8", "not a number"),
    ],
)
def test_numbers_in_other_scripts_or_notations_are_refused_not_read(
    classroom: Classroom, school: School, typed: str, said: str
) -> None:
    work_id = make_work(classroom, school)
    with pytest.raises(InvalidInput, match=said), classroom.transaction() as session:
        marks.set_mark(session, school.ada, work_id, school.student_ids[0], score=typed)
    with classroom.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Mark)) == 0


def test_a_decimal_comma_is_read_only_where_the_caller_says_it_is_one(
    classroom: Classroom, school: School
) -> None:
    work_id = make_work(classroom, school)
    with classroom.transaction() as session:
        mark = marks.set_mark(
            session, school.ada, work_id, school.student_ids[0], score="8,5", decimal_comma=True
        )
        assert mark.score == 8.5
    assert marks.parse_score(".5") == 0.5 and marks.parse_score("7.") == 7.0


def test_extra_credit_goes_up_to_twice_the_points_unless_the_class_says_otherwise(
    classroom: Classroom, school: School
) -> None:
    from sislink.classroom.services import export_settings

    work_id = make_work(classroom, school)  # 10 points
    student = school.student_ids[0]
    with classroom.transaction() as session:
        assert marks.set_mark(session, school.ada, work_id, student, score="20").score == 20
    for too_much in ("20.5", 1e20, "100"):
        with (
            pytest.raises(InvalidInput, match="more than 2 times its 10 points"),
            classroom.transaction() as session,
        ):
            marks.set_mark(session, school.ada, work_id, student, score=too_much)
    with classroom.transaction() as session:
        choices = export_settings.change_export_choices(
            session, school.ada, school.class_id, extra_credit="3"
        )
        assert choices.extra_credit_limit == 3.0 and "up to 3 times" in choices.describe()
        assert marks.set_mark(session, school.ada, work_id, student, score=30).score == 30
    with pytest.raises(InvalidInput, match="more than 3 times"), classroom.transaction() as s:
        marks.set_mark(s, school.ada, work_id, student, score=30.5)
    for bad in ("0.5", "abc", "1000", "nan"):
        with pytest.raises(InvalidInput, match="extra-credit limit"), classroom.transaction() as s:
            export_settings.change_export_choices(s, school.ada, school.class_id, extra_credit=bad)
    with classroom.transaction() as session:
        assert marks.marks_for(session, work_id)[0].score == 30  # the refusals changed nothing


def test_a_person_outside_the_class_is_not_named_to_the_teacher(
    classroom: Classroom, school: School
) -> None:
    from sislink.classroom.models import Role
    from sislink.classroom.services import people
    from sislink.classroom.services.access import Actor

    work_id = make_work(classroom, school)
    with classroom.transaction() as session:
        stranger = people.create_person(
            session,
            Actor.system(),
            name="Una Other",
            email="una@school.example",
            roles=[Role.STUDENT],
        ).id
    with (
        pytest.raises(NotFound, match="No student of this class is person") as refused,
        classroom.transaction() as session,
    ):
        marks.set_mark(session, school.ada, work_id, stranger, score=5)
    # A teacher must not learn who holds a person id outside their class.
    assert "Una" not in str(refused.value) and "una@" not in str(refused.value)


@pytest.mark.parametrize("bad", ["1e3", "\u0661\u0660", "1_0", "inf", "10,5"])
def test_points_and_the_limit_are_read_by_the_rule_marks_are_read_by(
    classroom: Classroom, school: School, bad: str
) -> None:
    from sislink.classroom.services import export_settings

    with (
        pytest.raises(InvalidInput, match="Max points must be a positive number") as refused,
        classroom.transaction() as session,
    ):
        coursework.create_coursework(
            session, school.ada, school.class_id, title="Big", max_points=bad
        )
    assert repr(bad) in str(refused.value)
    work_id = make_work(classroom, school)
    with pytest.raises(InvalidInput, match="Max points"), classroom.transaction() as session:
        coursework.edit_coursework(session, school.ada, work_id, max_points=bad)
    for limit in (bad, "2e0", "\u0662", "1_5"):
        with pytest.raises(InvalidInput, match="extra-credit limit"), classroom.transaction() as s:
            export_settings.change_export_choices(
                s, school.ada, school.class_id, extra_credit=limit
            )
    with classroom.transaction() as session:
        assert session.get(coursework.Coursework, work_id).max_points == 10  # type: ignore[union-attr]
        assert export_settings.extra_credit_limit(session, school.class_id) == 2.0


def test_lowering_points_or_the_limit_under_existing_marks_is_refused_naming_them(
    classroom: Classroom, school: School
) -> None:
    from sislink.classroom.services import export_settings

    work_id = make_work(classroom, school)  # 10 points, limit 2: up to 20
    sam, tess = school.student_ids
    with classroom.transaction() as session:
        marks.set_mark(session, school.ada, work_id, sam, score=18)
        marks.set_mark(session, school.ada, work_id, tess, score=9)
    # 5 points would allow 10: Sam's 18 would be above it.
    with (
        pytest.raises(InvalidInput, match="would leave 1 mark above the extra-credit limit") as by,
        classroom.transaction() as session,
    ):
        coursework.edit_coursework(session, school.ada, work_id, max_points="5")
    assert "'Quiz' / Sam (sam@school.example): 18 of 5" in str(by.value)
    # A limit of 1.5 allows 15 on 10 points: Sam's 18 again.
    with (
        pytest.raises(InvalidInput, match=r"Lowering the extra-credit limit to 1\.5") as by_limit,
        classroom.transaction() as session,
    ):
        export_settings.change_export_choices(
            session, school.ada, school.class_id, extra_credit="1.5"
        )
    assert "Sam (sam@school.example): 18 of 10" in str(by_limit.value)
    with classroom.transaction() as session:
        assert session.get(coursework.Coursework, work_id).max_points == 10  # type: ignore[union-attr]
        assert export_settings.extra_credit_limit(session, school.class_id) == 2.0
        # Points that keep every mark under the limit are taken (9 allows 18).
        assert (
            coursework.edit_coursework(session, school.ada, work_id, max_points=9).max_points == 9
        )


def _statements_to_import(classroom: Classroom, school: School, sheet_text: str) -> int:
    from sqlalchemy import event

    from sislink.classroom.services import gradebook_sheet

    sheet = gradebook_sheet.read_sheet(sheet_text)
    seen: list[str] = []

    def count(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(classroom.engine, "before_cursor_execute", count)
    try:
        with classroom.transaction() as session:
            done = gradebook_sheet.import_sheet(session, school.ada, school.class_id, sheet)
    finally:
        event.remove(classroom.engine, "before_cursor_execute", count)
    assert done.problems == [], done.problems
    return len(seen)


def test_a_sheet_costs_a_few_statements_per_cell_not_the_access_checks_again(
    classroom: Classroom, school: School
) -> None:
    from sislink.classroom.models import Person

    titles = [f"Work {n}" for n in range(8)]
    with classroom.transaction() as session:
        for title in titles:
            coursework.create_coursework(
                session, school.ada, school.class_id, title=title, max_points=10
            )
        emails = [session.get(Person, s).email for s in school.student_ids]  # type: ignore[union-attr]

    def sheet(columns: int) -> str:
        header = ",".join(["email", *titles[:columns]])
        return header + "\n" + "".join(f"{e}," + ",".join(["5"] * columns) + "\n" for e in emails)

    small = _statements_to_import(classroom, school, sheet(2))  # 4 cells
    large = _statements_to_import(classroom, school, sheet(8))  # 16 cells
    per_cell = (large - small) / 12
    # A savepoint, the mark's row read and written, the savepoint released: no access check,
    # limit or enrolment read again for every cell.
    assert per_cell <= 5, (small, large)
