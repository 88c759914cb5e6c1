"""Roster bulk upserts: exact counts, hand edits kept, adoption, reasons for skipped rows."""

from __future__ import annotations

from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select

from sislink.classroom.bulk import (
    ClassRow,
    CourseRow,
    EnrolmentRow,
    GradingPeriodRow,
    PersonRow,
    SchoolRow,
    TermRow,
    deactivate,
    find_missing,
    upsert_classes,
    upsert_courses,
    upsert_enrolments,
    upsert_grading_periods,
    upsert_people,
    upsert_schools,
    upsert_terms,
)
from sislink.classroom.db import Classroom
from sislink.classroom.models import (
    Class,
    Enrolment,
    EnrolmentRole,
    GradingPeriod,
    Person,
    Role,
    School,
)
from sislink.classroom.services import classes, people
from sislink.classroom.services.access import Actor

TEACHER = frozenset({Role.TEACHER})
STUDENT = frozenset({Role.STUDENT})


def load_structure(classroom: Classroom) -> None:
    with classroom.transaction() as session:
        upsert_schools(session, [SchoolRow("sch-1", "North High")])
        upsert_terms(session, [TermRow("t-1", "Autumn", date(2026, 9, 1), date(2026, 12, 20))])
        upsert_courses(session, [CourseRow("c-1", "Maths", "MA", "sch-1")])
        upsert_classes(
            session,
            [
                ClassRow("cls-1", "Maths 7B", "7B", "sch-1", "t-1", "c-1"),
                ClassRow("cls-2", "Maths 7C", "7C", "sch-1", "t-1", "c-1"),
            ],
        )
        upsert_people(
            session,
            [
                PersonRow("p-t", "Ada Teacher", "ada@school.example", roles=TEACHER),
                PersonRow("p-s1", "Sam Student", "sam@school.example", roles=STUDENT),
                PersonRow("p-s2", "Tess Student", "tess@school.example", roles=STUDENT),
            ],
        )


def test_first_load_creates_and_unchanged_reload_writes_nothing(classroom: Classroom) -> None:
    rows = [SchoolRow(f"sch-{i}", f"School {i}") for i in range(30)]
    with classroom.transaction() as session:
        first = upsert_schools(session, rows)
    with classroom.transaction() as session:
        again = upsert_schools(session, rows)
    assert (first.created, first.updated, first.unchanged) == (30, 0, 0)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 30)


def test_changed_rows_are_counted_as_updated_and_stored(classroom: Classroom) -> None:
    with classroom.transaction() as session:
        upsert_schools(session, [SchoolRow("a", "Alpha"), SchoolRow("b", "Beta")])
    with classroom.transaction() as session:
        counts = upsert_schools(session, [SchoolRow("a", "Alpha"), SchoolRow("b", "Beta Academy")])
    assert (counts.created, counts.updated, counts.unchanged) == (0, 1, 1)
    with classroom.transaction() as session:
        upsert_terms(session, [TermRow("t", "Autumn", date(2026, 9, 1), date(2026, 12, 1))])
        moved = upsert_terms(session, [TermRow("t", "Autumn", date(2026, 9, 2), date(2026, 12, 1))])
        assert moved.updated == 1


def test_a_sourced_id_twice_in_one_batch_is_written_once_last_wins(classroom: Classroom) -> None:
    with classroom.transaction() as session:
        counts = upsert_schools(session, [SchoolRow("a", "Old"), SchoolRow("a", "New")])
    assert counts.created == 1
    with classroom.transaction() as session:
        again = upsert_schools(session, [SchoolRow("a", "New")])
    assert again.unchanged == 1


def test_class_title_changed_by_a_teacher_survives_the_next_import(classroom: Classroom) -> None:
    load_structure(classroom)
    with classroom.transaction() as session:
        upsert_enrolments(
            session,
            [EnrolmentRow("e-t", "cls-1", "p-t", EnrolmentRole.TEACHER, is_primary=True)],
        )
        class_id = session.scalars(select(Class.id).where(Class.sis_sourced_id == "cls-1")).one()
        teacher_id = session.scalars(select(Person.id).where(Person.sis_sourced_id == "p-t")).one()
    teacher = Actor(teacher_id, TEACHER)
    with classroom.transaction() as session:
        classes.edit_class(session, teacher, class_id, title="Ada's Maths")
    with classroom.transaction() as session:
        counts = upsert_classes(
            session, [ClassRow("cls-1", "Maths 7B (renamed in SIS)", "7B-2", "sch-1", "t-1", "c-1")]
        )
        stored = session.get(Class, class_id)
        assert stored is not None
        assert stored.title == "Ada's Maths"
        assert stored.section == "7B-2"
        again = upsert_classes(
            session, [ClassRow("cls-1", "Another SIS title", "7B-2", "sch-1", "t-1", "c-1")]
        )
    assert counts.updated == 1
    assert again.unchanged == 1  # a difference only in a hand-edited field is no change


def test_primary_teacher_comes_from_the_primary_teacher_enrolment(classroom: Classroom) -> None:
    load_structure(classroom)
    with classroom.transaction() as session:
        counts = upsert_enrolments(
            session,
            [
                EnrolmentRow("e-t", "cls-1", "p-t", EnrolmentRole.TEACHER, is_primary=True),
                EnrolmentRow("e-s1", "cls-1", "p-s1", EnrolmentRole.STUDENT),
                EnrolmentRow("e-s2", "cls-1", "p-s2", EnrolmentRole.STUDENT),
            ],
        )
        taught = session.scalars(select(Class).where(Class.sis_sourced_id == "cls-1")).one()
        teacher = session.scalars(select(Person).where(Person.sis_sourced_id == "p-t")).one()
        assert taught.primary_teacher_id == teacher.id
        assert [c.id for c in classes.classes_taught_by(session, teacher.id)] == [taught.id]
    assert counts.created == 3


def test_rows_whose_references_were_not_imported_are_skipped_with_a_reason(
    classroom: Classroom,
) -> None:
    load_structure(classroom)
    with classroom.transaction() as session:
        class_counts = upsert_classes(session, [ClassRow("cls-x", "Lost", None, "sch-404")])
        enrolment_counts = upsert_enrolments(
            session,
            [
                EnrolmentRow("e-1", "cls-404", "p-s1", EnrolmentRole.STUDENT),
                EnrolmentRow("e-2", "cls-1", "p-404", EnrolmentRole.STUDENT),
            ],
        )
        period_counts = upsert_grading_periods(session, [GradingPeriodRow("gp", "Q1", "t-404")])
        assert session.scalar(select(func.count()).select_from(Enrolment)) == 0
        assert session.scalar(select(func.count()).select_from(GradingPeriod)) == 0
    assert class_counts.created == 0
    assert "school (SIS id 'sch-404') has not been imported" in class_counts.skipped[0].reason
    reasons = {row.sourced_id: row.reason for row in enrolment_counts.skipped}
    assert "class (SIS id 'cls-404')" in reasons["e-1"]
    assert "person (SIS id 'p-404')" in reasons["e-2"]
    assert "term (SIS id 't-404')" in period_counts.skipped[0].reason


def test_grading_periods_belong_to_their_term(classroom: Classroom) -> None:
    load_structure(classroom)
    with classroom.transaction() as session:
        counts = upsert_grading_periods(
            session, [GradingPeriodRow("gp-1", "Q1", "t-1", date(2026, 9, 1), date(2026, 10, 31))]
        )
        period = session.scalars(select(GradingPeriod)).one()
        assert period.term_id is not None
    assert counts.created == 1


def test_a_person_made_here_is_adopted_by_email_whatever_its_case(classroom: Classroom) -> None:
    with classroom.transaction() as session:
        made = people.create_person(
            session, Actor.system(), name="Ada", email="Ada@School.example", roles=[Role.ADMIN]
        )
    with classroom.transaction() as session:
        counts = upsert_people(
            session, [PersonRow("p-ada", "Ada Lovelace", "ada@school.EXAMPLE", roles=TEACHER)]
        )
        adopted = session.get(Person, made.id)
        assert adopted is not None
        assert adopted.sis_sourced_id == "p-ada"
        assert adopted.name == "Ada Lovelace"
        assert adopted.roles == {Role.ADMIN, Role.TEACHER}  # admin is local: kept
        assert session.scalar(select(func.count()).select_from(Person)) == 1
    assert (counts.created, counts.updated) == (0, 1)


def test_an_email_already_used_by_another_sis_person_is_skipped_not_merged(
    classroom: Classroom,
) -> None:
    with classroom.transaction() as session:
        upsert_people(session, [PersonRow("p-1", "First", "same@school.example", roles=STUDENT)])
    with classroom.transaction() as session:
        counts = upsert_people(
            session,
            [
                PersonRow("p-2", "Second", "SAME@school.example", roles=STUDENT),
                PersonRow("p-3", "Third", "dup@school.example", roles=STUDENT),
                PersonRow("p-4", "Fourth", "dup@school.example", roles=STUDENT),
            ],
        )
        assert session.scalar(select(func.count()).select_from(Person)) == 2
    reasons = {row.sourced_id: row.reason for row in counts.skipped}
    assert set(reasons) == {"p-2", "p-4"}
    assert "already used by 'p-1'" in reasons["p-2"]
    assert "already used by SIS id 'p-3'" in reasons["p-4"]
    assert counts.created == 1


def test_an_enrolment_made_here_is_adopted_by_the_sis_enrolment(classroom: Classroom) -> None:
    load_structure(classroom)
    with classroom.transaction() as session:
        class_id = session.scalars(select(Class.id).where(Class.sis_sourced_id == "cls-1")).one()
        student_id = session.scalars(select(Person.id).where(Person.sis_sourced_id == "p-s1")).one()
        classes.enrol(session, Actor.system(), class_id, student_id, EnrolmentRole.STUDENT)
    with classroom.transaction() as session:
        counts = upsert_enrolments(
            session, [EnrolmentRow("e-s1", "cls-1", "p-s1", EnrolmentRole.STUDENT)]
        )
        enrolment = session.scalars(select(Enrolment)).one()
        assert enrolment.sis_sourced_id == "e-s1"
    assert counts.updated == 1


def test_a_duplicate_enrolment_from_the_sis_is_skipped_with_a_reason(classroom: Classroom) -> None:
    load_structure(classroom)
    with classroom.transaction() as session:
        upsert_enrolments(session, [EnrolmentRow("e-a", "cls-1", "p-s1", EnrolmentRole.STUDENT)])
    with classroom.transaction() as session:
        counts = upsert_enrolments(
            session,
            [
                EnrolmentRow("e-a", "cls-1", "p-s1", EnrolmentRole.STUDENT),
                EnrolmentRow("e-b", "cls-1", "p-s1", EnrolmentRole.STUDENT),
            ],
        )
    assert counts.unchanged == 1
    assert [row.sourced_id for row in counts.skipped] == ["e-b"]
    assert "'e-a'" in counts.skipped[0].reason


def test_rows_the_sis_no_longer_sends_are_found_and_deactivated_not_deleted(
    classroom: Classroom,
) -> None:
    load_structure(classroom)
    with classroom.transaction() as session:
        people.create_person(
            session, Actor.system(), name="Local", email="local@school.example", roles=[Role.ADMIN]
        )
        missing = find_missing(session, Person, {"p-t", "p-s1"})
        assert missing == ["p-s2"]  # the person made here is never listed
        assert deactivate(session, Person, missing) == 1
        assert deactivate(session, Person, missing) == 0
        gone = session.scalars(select(Person).where(Person.sis_sourced_id == "p-s2")).one()
        assert gone.active is False
        assert find_missing(session, Person, {"p-t", "p-s1"}) == []
    with classroom.transaction() as session:
        counts = upsert_people(
            session, [PersonRow("p-s2", "Tess Student", "tess@school.example", roles=STUDENT)]
        )
    assert counts.updated == 1  # back in the SIS: active again


def test_batches_larger_than_one_lookup_chunk_are_counted_exactly(classroom: Classroom) -> None:
    rows = [
        PersonRow(f"p-{i}", f"Person {i}", f"person{i}@school.example", roles=STUDENT)
        for i in range(12_000)
    ]
    with classroom.transaction() as session:
        first = upsert_people(session, rows)
    changed = [*rows[:11_000], PersonRow("p-11000", "Renamed", "person11000@school.example")]
    with classroom.transaction() as session:
        again = upsert_people(session, changed)
        assert session.scalar(select(func.count()).select_from(Person)) == 12_000
    assert first.created == 12_000
    assert (again.created, again.updated, again.unchanged) == (0, 1, 11_000)


names = st.text(alphabet="abcdefgh ", min_size=1, max_size=8)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    first=st.dictionaries(st.sampled_from([f"s{i}" for i in range(8)]), names, max_size=8),
    second=st.dictionaries(st.sampled_from([f"s{i}" for i in range(8)]), names, max_size=8),
)
def test_counts_always_add_up_and_the_store_matches_the_last_load(
    classroom: Classroom, first: dict[str, str], second: dict[str, str]
) -> None:
    with classroom.transaction() as session:
        session.execute(delete(School))
        upsert_schools(session, [SchoolRow(sid, name) for sid, name in first.items()])
        counts = upsert_schools(session, [SchoolRow(sid, name) for sid, name in second.items()])
        stored = {
            sid: name for sid, name in session.execute(select(School.sis_sourced_id, School.name))
        }
    assert counts.created + counts.updated + counts.unchanged == len(second)
    assert counts.created == len(set(second) - set(first))
    assert counts.unchanged == sum(1 for sid, name in second.items() if first.get(sid) == name)
    assert stored == {**first, **second}


def _old_student(classroom: Classroom, **extra: str) -> int:
    with classroom.transaction() as session:
        upsert_people(
            session,
            [
                PersonRow(
                    "old-1",
                    "Ann Old",
                    "shared@x.org",
                    "Ann",
                    "Old",
                    extra.get("identifier", "S-100"),
                    STUDENT,
                )
            ],
        )
        found = session.scalar(select(Person.id).where(Person.sis_sourced_id == "old-1"))
        assert found is not None
        return found


def test_a_new_person_given_an_old_person_s_email_does_not_take_over_their_row(
    classroom: Classroom,
) -> None:
    old_id = _old_student(classroom)
    newcomer = PersonRow("new-9", "Bob New", "shared@x.org", "Bob", "New", "S-999", STUDENT)
    with classroom.transaction() as session:
        counts = upsert_people(session, [newcomer], sent_now={"new-9"})
    assert counts.taken_over == []
    assert [s.sourced_id for s in counts.skipped] == ["new-9"]
    assert "shared@x.org" in counts.skipped[0].reason
    with classroom.session() as session:
        old = session.get(Person, old_id)
        assert old is not None and (old.sis_sourced_id, old.name) == ("old-1", "Ann Old")


def test_a_renumbered_person_with_a_sign_in_token_or_admin_role_is_not_taken_over(
    classroom: Classroom,
) -> None:
    from sislink.classroom.models import ApiToken, LoginAccount

    same = PersonRow("new-1", "Ann Old", "shared@x.org", "Ann", "Old", "S-100", STUDENT)
    for holds in ("login", "token", "admin"):
        with classroom.transaction() as session:
            session.execute(delete(ApiToken))
            session.execute(delete(LoginAccount))
            session.execute(delete(Person))
        old_id = _old_student(classroom)
        with classroom.transaction() as session:
            if holds == "login":
                session.add(LoginAccount(person_id=old_id, password_hash="argon2-hash"))
            elif holds == "token":
                session.add(ApiToken(person_id=old_id, token_hash="0" * 64, label="t"))
            else:
                person = session.get(Person, old_id)
                assert person is not None
                person.is_admin = True
        with classroom.transaction() as session:
            counts = upsert_people(session, [same], sent_now={"new-1"})
        assert counts.taken_over == [], holds
        assert [s.sourced_id for s in counts.skipped] == ["new-1"], holds
        with classroom.session() as session:
            assert session.scalar(select(Person.sis_sourced_id).where(Person.id == old_id)) == (
                "old-1"
            )


def test_a_renumbered_person_the_sis_names_alike_keeps_their_row_and_it_is_reported(
    classroom: Classroom,
) -> None:
    old_id = _old_student(classroom)
    # The same identifier, another spelling of the name: the same person, re-numbered.
    renumbered = PersonRow("new-1", "Annie Old", "shared@x.org", "Annie", "Old", "S-100", STUDENT)
    with classroom.transaction() as session:
        counts = upsert_people(session, [renumbered], sent_now={"new-1"})
    assert counts.taken_over == [("old-1", "new-1")]
    assert counts.skipped == []
    with classroom.session() as session:
        assert session.scalar(select(Person.sis_sourced_id).where(Person.id == old_id)) == "new-1"
