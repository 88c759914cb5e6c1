"""The teacher's command line against the built-in SIS: list and link classes, add coursework,
set and import marks, export (only changes the second time), read the report; another teacher
is refused in plain words."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from sislink.classroom import Actor, open_classroom
from sislink.classroom.models import Coursework, Role
from sislink.classroom.services import people, time_zone
from sislink.cli import app
from sislink.oneroster.models import Result
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.settings import Settings
from sync.mark_export_world import World, build_world, sis_gradebook


@pytest.fixture(scope="module")
def sis() -> Iterator[RunningProvider]:
    with running_provider(profile="generic-1.2", students=60) as running:
        yield running


@pytest.fixture
def world(sis: RunningProvider, tmp_path: Path) -> Iterator[World]:
    classroom = open_classroom(Settings.for_home(tmp_path))
    built = asyncio.run(build_world(sis, classroom, students=3))
    with classroom.transaction() as session:
        people.create_person(
            session,
            Actor.system(),
            name="Other",
            email="other@school.example",
            roles=[Role.TEACHER],
        )
    yield built
    classroom.close()


def _run(world: World, tmp_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"SISLINK_HOME": str(tmp_path)})
    return result.exit_code, result.output


def _emails(world: World) -> list[str]:
    from sislink.classroom.models import Person

    with world.classroom.session() as session:
        return [session.get(Person, s).email or "" for s in world.students]  # type: ignore[union-attr]


def test_a_teacher_exports_from_the_command_line_and_the_second_export_sends_nothing(
    world: World, tmp_path: Path
) -> None:
    teacher = world.teacher_email
    code, text = _run(world, tmp_path, "classes", "list", "--teacher", teacher, "--json")
    assert code == 0, text
    (listed,) = json.loads(text)
    assert listed["id"] == world.class_id and listed["sis_class_id"] == world.sis_class_id
    cls = str(world.class_id)
    due = world.due_in_period().date().isoformat()
    code, text = _run(
        world,
        tmp_path,
        "coursework",
        "add",
        cls,
        "--title",
        "Essay",
        "--points",
        "20",
        "--due",
        due,
        "--category",
        "Homework",
        "--as",
        teacher,
        "--json",
    )
    assert code == 0, text
    essay = json.loads(text)["id"]
    _run(
        world,
        tmp_path,
        "coursework",
        "add",
        cls,
        "--title",
        "Quiz",
        "--points",
        "10",
        "--due",
        due,
        "--category",
        "Tests",
        "--as",
        teacher,
    )
    a, b, c = _emails(world)
    code, text = _run(
        world,
        tmp_path,
        "marks",
        "set",
        cls,
        "--coursework",
        str(essay),
        "--student",
        a,
        "--score",
        "18",
        "--as",
        teacher,
    )
    assert code == 0, text
    sheet = tmp_path / "marks.csv"
    sheet.write_text(f"email,Essay,Quiz\n{b},21,ex\n{c},abc,7\nnobody@x.example,1,2\n")
    code, text = _run(
        world, tmp_path, "marks", "import", cls, str(sheet), "--as", teacher, "--json"
    )
    assert code == 3  # finished, but refused something (README, "Exit status")
    imported = json.loads(text)
    assert imported["imported"] == 3
    problems = {(p["row"], p["column"]): p["problem"] for p in imported["problems"]}
    assert "'abc' is not a number" in problems[(3, "Essay")]
    assert "No student of this class is 'nobody@x.example'" in problems[(4, "email")]
    code, text = _run(world, tmp_path, "marks", "export", "--class", cls, "--as", teacher, "--json")
    assert code == 0, text
    first = json.loads(text)
    assert first["writes"] == 2 + 4 and first["status"] == "succeeded"
    assert {i["outcome"] for i in first["items"]} == {"exported"}
    code, text = _run(world, tmp_path, "marks", "export", "--class", cls, "--as", teacher, "--json")
    assert json.loads(text)["writes"] == 0
    code, text = _run(world, tmp_path, "marks", "report", cls, "--as", teacher, "--json")
    assert code == 0 and json.loads(text)[0]["writes"] == 0
    code, text = _run(
        world, tmp_path, "marks", "export", "--class", cls, "--as", "other@school.example"
    )
    assert code == 1 and "You do not teach" in text


def test_link_and_unlink_from_the_command_line_by_the_primary_teacher_only(
    world: World, tmp_path: Path
) -> None:
    cls = str(world.class_id)
    code, text = _run(world, tmp_path, "classes", "unlink", cls, "--as", "other@school.example")
    assert code == 1 and "Only the primary teacher" in text
    code, text = _run(world, tmp_path, "classes", "unlink", cls, "--as", world.teacher_email)
    assert code == 0, text
    code, text = _run(world, tmp_path, "classes", "list", "--json")
    assert json.loads(text)[0]["sis_class_id"] is None
    code, text = _run(
        world, tmp_path, "marks", "export", "--class", cls, "--as", world.teacher_email
    )
    assert code == 1 and "not linked to a SIS class" in text
    code, text = _run(
        world, tmp_path, "classes", "list", "--teacher", world.teacher_email, "--sis", "--json"
    )
    assert world.sis_class_id in {c["sourced_id"] for c in json.loads(text)}
    code, text = _run(
        world,
        tmp_path,
        "classes",
        "link",
        cls,
        "--sis-class",
        world.sis_class_id,
        "--as",
        world.teacher_email,
        "--json",
    )
    assert code == 0, text
    assert "Homework" in json.loads(text)["categories"]


def test_a_teacher_lists_only_their_own_classes_and_their_coursework(
    world: World, tmp_path: Path
) -> None:
    teacher, cls = world.teacher_email, str(world.class_id)
    code, text = _run(world, tmp_path, "classes", "list", "--as", teacher, "--json")
    assert code == 0, text
    assert [c["id"] for c in json.loads(text)] == [world.class_id]
    code, text = _run(world, tmp_path, "classes", "list", "--as", "other@school.example", "--json")
    assert code == 0 and json.loads(text) == []
    code, text = _run(
        world, tmp_path, "classes", "list", "--as", "other@school.example", "--teacher", teacher
    )
    assert code == 1 and "only their own classes" in text
    code, text = _run(world, tmp_path, "coursework", "list", cls, "--as", teacher, "--json")
    assert code == 0 and json.loads(text) == []
    code, text = _run(world, tmp_path, "coursework", "list", cls, "--as", "other@school.example")
    assert code == 1 and "You do not teach this class" in text


# ---- marks set, import and the class's export choices, as the SIS then holds them -----------


def _json(world: World, tmp_path: Path, *args: str) -> Any:
    code, text = _run(world, tmp_path, *args)
    assert code == 0, text
    return json.loads(text)


def _sis_results(world: World, title: str) -> dict[str, Result]:
    """The SIS's results of the lineItem with this title, by the student's email."""
    email_of = dict(
        zip((world.sis_students[s] for s in world.students), _emails(world), strict=True)
    )
    items, results = asyncio.run(sis_gradebook(world))
    (item,) = [i for i in items if i.title == title]
    return {email_of[r.student.sourced_id]: r for r in results[item.sourced_id]}


def _status(result: Result) -> tuple[str, float | None]:
    return result.score_status, result.score


def test_excused_and_missing_set_from_the_command_line_reach_the_sis_as_the_class_chose(
    world: World, tmp_path: Path
) -> None:
    teacher, cls = world.teacher_email, str(world.class_id)
    work = world.add_coursework("Essay", points=20)
    a, b, c = _emails(world)

    def mark(student: str, *given: str) -> Any:
        return _json(
            world,
            tmp_path,
            "marks",
            "set",
            cls,
            "--coursework",
            str(work),
            "--student",
            student,
            *given,
            "--as",
            teacher,
            "--json",
        )

    mark(a, "--score", "15")
    mark(b, "--score", "12")
    mark(c, "--excused")
    missing = mark(a, "--missing")  # the earlier 15 must not stay behind
    assert (missing["score"], missing["excused"], missing["missing"]) == (None, False, True)
    excused = mark(b, "--excused")
    assert (excused["score"], excused["excused"], excused["missing"]) == (None, True, False)
    assert mark(c, "--missing")["excused"] is False  # no longer excused
    code, text = _run(
        world,
        tmp_path,
        "marks",
        "set",
        cls,
        "--coursework",
        str(work),
        "--student",
        a,
        "--score",
        "3",
        "--missing",
        "--as",
        teacher,
    )
    assert code == 1 and "exactly one of --score N, --excused or --missing" in text

    assert _json(world, tmp_path, "classes", "settings", cls, "--as", teacher, "--json") == {
        "class_id": world.class_id,
        "missing_as": "zero",
        "export_drafts": False,
        "extra_credit_limit": 2.0,
    }
    first = _json(world, tmp_path, "marks", "export", "--class", cls, "--as", teacher, "--json")
    assert first["writes"] == 1 + 3, first
    held = _sis_results(world, "Essay")
    assert _status(held[a]) == ("fully graded", 0)
    assert _status(held[b]) == ("exempt", None)
    assert _status(held[c]) == ("fully graded", 0)

    chosen = _json(
        world,
        tmp_path,
        "classes",
        "settings",
        cls,
        "--missing-as",
        "not-submitted",
        "--as",
        teacher,
        "--json",
    )
    assert chosen["missing_as"] == "not_submitted" and chosen["export_drafts"] is False
    code, text = _run(world, tmp_path, "classes", "settings", cls, "--as", teacher)
    assert code == 0 and "'not submitted' (no score)" in text
    second = _json(world, tmp_path, "marks", "export", "--class", cls, "--as", teacher, "--json")
    assert second["writes"] == 2  # the two missing marks, nothing else
    held = _sis_results(world, "Essay")
    assert _status(held[a]) == _status(held[c]) == ("not submitted", None)
    assert _status(held[b]) == ("exempt", None)


def test_only_the_primary_teacher_changes_the_export_choices_and_bad_values_are_explained(
    world: World, tmp_path: Path
) -> None:
    cls = str(world.class_id)
    code, text = _run(
        world,
        tmp_path,
        "classes",
        "settings",
        cls,
        "--export-drafts",
        "--as",
        "other@school.example",
    )
    assert code == 1 and "Only the primary teacher of" in text
    code, text = _run(world, tmp_path, "classes", "settings", cls, "--as", "other@school.example")
    assert code == 1 and "You do not teach" in text
    code, text = _run(
        world,
        tmp_path,
        "classes",
        "settings",
        cls,
        "--missing-as",
        "blank",
        "--as",
        world.teacher_email,
    )
    assert code == 1 and "'zero'" in text and "'not-submitted'" in text and "'blank'" in text
    # Without --as the command line acts as the installation's administrator.
    assert _json(world, tmp_path, "classes", "settings", cls, "--export-drafts", "--json")[
        "export_drafts"
    ]
    assert not _json(world, tmp_path, "classes", "settings", cls, "--no-export-drafts", "--json")[
        "export_drafts"
    ]


def test_a_returned_mark_set_again_as_a_draft_is_not_exported_until_the_class_says_so(
    world: World, tmp_path: Path
) -> None:
    teacher, cls = world.teacher_email, str(world.class_id)
    work = world.add_coursework("Lab", points=10)
    (a, *_) = _emails(world)

    def mark(*given: str) -> Any:
        return _json(
            world,
            tmp_path,
            "marks",
            "set",
            cls,
            "--coursework",
            str(work),
            "--student",
            a,
            *given,
            "--as",
            teacher,
            "--json",
        )

    assert mark("--score", "8")["state"] == "returned"
    _json(world, tmp_path, "marks", "export", "--class", cls, "--as", teacher, "--json")
    assert _status(_sis_results(world, "Lab")[a]) == ("fully graded", 8)
    assert mark("--score", "9", "--draft")["state"] == "draft"
    kept = _json(world, tmp_path, "marks", "export", "--class", cls, "--as", teacher, "--json")
    assert kept["writes"] == 0
    (item,) = [i for i in kept["items"] if i["kind"] == "result"]
    assert item["outcome"] == "skipped" and item["reason"].startswith("The mark is a draft")
    assert _status(_sis_results(world, "Lab")[a]) == ("fully graded", 8)
    _json(world, tmp_path, "classes", "settings", cls, "--export-drafts", "--as", teacher, "--json")
    drafts = _json(world, tmp_path, "marks", "export", "--class", cls, "--as", teacher, "--json")
    assert drafts["writes"] == 1
    assert _status(_sis_results(world, "Lab")[a]) == ("fully graded", 9)


def test_a_reimported_sheet_replaces_excused_and_scores_and_rows_are_numbered_as_the_sheet(
    world: World, tmp_path: Path
) -> None:
    teacher, cls = world.teacher_email, str(world.class_id)
    world.add_coursework("Essay", points=20)
    world.add_coursework("Quiz", points=10)
    a, b, c = _emails(world)
    sheet = tmp_path / "marks.csv"
    sheet.write_text(f"email,Essay,Quiz\n{a},ex,5\n{b},7,ex\n{c},9,4\n", encoding="utf-8")
    first = _json(world, tmp_path, "marks", "import", cls, str(sheet), "--as", teacher, "--json")
    assert first == {"imported": 6, "problems": []}
    # A quoted cell with a line break is one cell, and a line separator inside a cell is no
    # row break: the rows keep the numbers a spreadsheet shows (2, 3, 4).
    sheet.write_text(
        f'email,Essay,Quiz\r\n{a},missing,"not\r\nsure"\r\n{b},M,abc\u2028def\r\n{c},ex,oops\r\n',
        encoding="utf-8",
    )
    code, text = _run(
        world, tmp_path, "marks", "import", cls, str(sheet), "--as", teacher, "--json"
    )
    assert code == 3, text
    again = json.loads(text)
    assert again["imported"] == 3
    assert [(p["row"], p["column"], p["value"]) for p in again["problems"]] == [
        (2, "Quiz", "not\r\nsure"),
        (3, "Quiz", "abc\u2028def"),
        (4, "Quiz", "oops"),
    ]
    exported = _json(world, tmp_path, "marks", "export", "--class", cls, "--as", teacher, "--json")
    assert exported["status"] == "succeeded", exported
    essay, quiz = _sis_results(world, "Essay"), _sis_results(world, "Quiz")
    assert _status(essay[a]) == ("fully graded", 0)  # missing, no longer excused
    assert _status(essay[b]) == ("fully graded", 0)  # missing: the 7 is gone
    assert _status(essay[c]) == ("exempt", None)  # excused: the 9 is gone
    assert _status(quiz[a]) == ("fully graded", 5)  # the unreadable cell changed nothing
    assert _status(quiz[b]) == ("exempt", None)
    assert _status(quiz[c]) == ("fully graded", 4)


def test_a_sheet_with_an_unclosed_quote_is_refused_whole(world: World, tmp_path: Path) -> None:
    from sislink.classroom.models import Mark

    world.add_coursework("Essay", points=20)
    a, b, _ = _emails(world)
    sheet = tmp_path / "marks.csv"
    sheet.write_text(f'email,Essay\n{a},"8\n{b},9\n', encoding="utf-8")
    code, text = _run(
        world,
        tmp_path,
        "marks",
        "import",
        str(world.class_id),
        str(sheet),
        "--as",
        world.teacher_email,
    )
    assert code == 1
    assert "is not readable as comma-separated values" in text and "Nothing was imported" in text
    with world.classroom.session() as session:
        assert session.scalars(select(Mark)).all() == []


def test_a_dry_run_sends_nothing_and_all_exports_only_the_teachers_own_linked_classes(
    world: World, tmp_path: Path
) -> None:
    teacher, cls = world.teacher_email, str(world.class_id)
    work = world.add_coursework("Essay", points=20)
    for n, student in enumerate(world.students):
        world.mark(work, student, score=10 + n)
    others = _other_teachers_linked_class(world)

    dry = _json(
        world, tmp_path, "marks", "export", "--class", cls, "--dry-run", "--as", teacher, "--json"
    )
    assert dry["writes"] == 0 and dry["status"] == "succeeded"
    assert sorted((i["kind"], i["outcome"]) for i in dry["items"]) == [
        ("lineItem", "would_export"),
        *[("result", "would_export")] * 3,
    ]
    items, _ = asyncio.run(sis_gradebook(world))
    assert items == []  # the SIS holds nothing yet

    mine = _json(world, tmp_path, "marks", "export", "--all", "--as", teacher, "--json")
    assert mine["writes"] == 1 + 3 and mine["status"] == "succeeded"
    assert [c["class_id"] for c in mine["classes"]] == [world.class_id]
    assert {i["outcome"] for i in mine["items"]} == {"exported"}
    assert sorted(r.score for r in _sis_results(world, "Essay").values()) == [10, 11, 12]
    # Without --as (the installation's administrator) every linked class goes.
    everyone = _json(world, tmp_path, "marks", "export", "--all", "--dry-run", "--json")
    assert sorted(c["class_id"] for c in everyone["classes"]) == sorted([world.class_id, others])
    assert everyone["writes"] == 0


def _other_teachers_linked_class(world: World) -> int:
    """A class of the other teacher, linked (by an administrator) to another SIS class."""
    from sislink.classroom.services import classes
    from sislink.sync import class_link

    with world.classroom.transaction() as session:
        other = people.find_person_by_email(session, "other@school.example")
        assert other is not None
        made = classes.create_class(
            session, Actor.system(), title="Other's class", primary_teacher_id=other.id
        )
        class_id = made.id

    async def link() -> None:
        async with world.client() as client:
            choices = await class_link.sis_classes_for_teacher(client, world.teacher_email)
            free = next(c for c in choices if c.sourced_id != world.sis_class_id)
            await class_link.link_class(
                world.classroom, client, Actor.system(), class_id, free.sourced_id
            )

    asyncio.run(link())
    return class_id


def test_all_says_which_class_could_not_be_exported_and_why_and_exits_non_zero(
    tmp_path: Path,
) -> None:
    # A SIS of its own: this test deletes a class in it.
    with running_provider(profile="generic-1.2", students=60) as own_sis:
        classroom = open_classroom(Settings.for_home(tmp_path))
        world = asyncio.run(build_world(own_sis, classroom, students=2))
        work = world.add_coursework("Essay", points=20)
        for student in world.students:
            world.mark(work, student, score=10)
        assert own_sis.store.delete("class", world.sis_class_id)  # deleted in the SIS meanwhile

        code, output = _run(
            world, tmp_path, "marks", "export", "--all", "--as", world.teacher_email
        )
        classroom.close()
    assert code == 1
    assert "failed" in output
    assert f"does not know this class's SIS class ({world.sis_class_id})" in output


def test_an_export_that_skipped_everything_needs_attention_and_exits_3(
    world: World, tmp_path: Path
) -> None:
    teacher, cls = world.teacher_email, str(world.class_id)
    work = world.add_coursework("Reading log", points=None)  # no points: the SIS cannot take it
    world.add_coursework("Plan", points=10, publish=False)  # a draft: the teacher's own choice
    code, text = _run(world, tmp_path, "marks", "export", "--class", cls, "--as", teacher, "--json")
    assert code == 3, text
    done = json.loads(text)
    assert done["status"] == "needs_attention" and done["writes"] == 0
    (summary,) = done["classes"]
    assert summary["outcome"] == "needs_attention"
    # The draft is reported as skipped, but only the coursework without points needs attention.
    assert summary["attention"] == {
        "count": 1,
        "reasons": [
            "Reading log: It is not marked with points, so the SIS has nothing to record: "
            "give it max points."
        ],
    }
    code, text = _run(world, tmp_path, "marks", "export", "--class", cls, "--as", teacher)
    assert code == 3
    assert "needs_attention" in text and "Needs attention: 1 item skipped" in text
    code, text = _run(world, tmp_path, "marks", "export", "--all", "--as", teacher)
    assert code == 3, text
    # Once nothing is left to act on, the export succeeds again (exit 0).
    with world.classroom.transaction() as session:
        from sislink.classroom.services import coursework

        coursework.edit_coursework(session, world.teacher, work, max_points=5)
    code, text = _run(world, tmp_path, "marks", "export", "--class", cls, "--as", teacher, "--json")
    assert code == 0, text
    assert json.loads(text)["status"] == "succeeded"


def _sheet_import(world: World, tmp_path: Path, text: str) -> tuple[int, dict[str, Any]]:
    sheet = tmp_path / "sheet.csv"
    sheet.write_text(text, encoding="utf-8")
    args = ("marks", "import", str(world.class_id), str(sheet), "--as", world.teacher_email)
    code, output = _run(world, tmp_path, *args, "--json")
    return code, json.loads(output)


def _scores(world: World, title: str) -> dict[str, float | None]:
    """The class's marks on the coursework with this title, by student email."""
    from sislink.classroom.models import Coursework, Mark, Person

    with world.classroom.session() as session:
        rows = session.execute(
            select(Person.email, Mark.score)
            .join(Mark, Mark.student_id == Person.id)
            .join(Coursework, Coursework.id == Mark.coursework_id)
            .where(Coursework.title == title, Coursework.class_id == world.class_id)
        ).all()
    return {email or "": score for email, score in rows}


def test_sheets_as_excel_saves_them_semicolons_tabs_and_decimal_commas_are_read(
    world: World, tmp_path: Path
) -> None:
    world.add_coursework("Essay", points=20)
    world.add_coursework("Quiz", points=10)
    a, b, c = _emails(world)
    # Excel in a comma-decimal locale: semicolons, and a comma for decimals.
    code, done = _sheet_import(world, tmp_path, f"email;Essay;Quiz\n{a};8,5;ex\n{b};17;9,25\n")
    assert code == 0 and done == {"imported": 4, "problems": []}, done
    assert _scores(world, "Essay") == {a: 8.5, b: 17.0}
    assert _scores(world, "Quiz")[b] == 9.25
    # Excel's "Unicode text": tabs; a quoted cell may hold the separator.
    code, done = _sheet_import(world, tmp_path, f'email\tEssay\t"Quiz"\n{c}\t"7,5"\t4\n')
    assert code == 0 and done["imported"] == 2, done
    assert _scores(world, "Essay")[c] == 7.5
    # In a comma-separated sheet, "8,5" is two cells: the comma is never a decimal there.
    code, done = _sheet_import(world, tmp_path, f'email,Essay\n{a},"8,5"\n')
    assert code == 3
    (problem,) = done["problems"]
    assert problem["row"] == 2 and "has a comma" in problem["problem"]
    assert _scores(world, "Essay")[a] == 8.5  # unchanged


def test_a_title_holding_the_other_separator_does_not_change_how_the_sheet_is_split(
    world: World, tmp_path: Path
) -> None:
    world.add_coursework("Unit 1; quiz", points=10)
    world.add_coursework("Unit 2, essay", points=10)
    a, b, _ = _emails(world)
    # A comma sheet whose header holds one semicolon (unquoted) and one comma.
    code, done = _sheet_import(world, tmp_path, f"email,Unit 1; quiz\n{a},7\n{b},8.5\n")
    assert code == 0 and done == {"imported": 2, "problems": []}, done
    assert _scores(world, "Unit 1; quiz") == {a: 7.0, b: 8.5}
    # A semicolon sheet whose header holds one comma, with a decimal comma.
    code, done = _sheet_import(world, tmp_path, f"email;Unit 2, essay\n{a};6,5\n{b};9\n")
    assert code == 0 and done == {"imported": 2, "problems": []}, done
    assert _scores(world, "Unit 2, essay") == {a: 6.5, b: 9.0}


def test_a_sheet_is_refused_row_by_row_where_it_would_be_guessed(
    world: World, tmp_path: Path
) -> None:
    from sislink.classroom.models import Person

    world.add_coursework("Essay", points=20)
    world.add_coursework("Quiz", points=10)
    world.add_coursework("Lab", points=10)
    a, b, c = _emails(world)
    with world.classroom.transaction() as session:
        people.create_person(
            session,
            Actor.system(),
            name="Una Other",
            email="una@school.example",
            roles=[Role.STUDENT],
        )
        person = session.scalars(select(Person).where(Person.email == c)).one()
        person.sis_identifier = "S-3003"  # named by SIS identifier in the sheet
    sheet = (
        "email,Essay,Quiz,Lab, quiz \n"  # the Quiz twice (columns C and E)
        f"{a},10,5,6,7\n"
        f"{b},41,,1e3\n"  # 41 is above twice 20; 1e3 is exponent notation
        f"{a},12,,6\n"  # a second row for the same student
        "S-3003,\u0661\u0662,,8\n"  # Arabic-Indic digits; named by SIS identifier
        "una@school.example,5,,5\n"  # a student, but not of this class
    )
    code, done = _sheet_import(world, tmp_path, sheet)
    assert code == 3, done
    problems = [(p["row"], p["column"], p["problem"]) for p in done["problems"]]
    by_row: dict[int, list[str]] = {}
    for row, _, said in problems:
        by_row.setdefault(row, []).append(said)
    assert "has 2 columns (C and E)" in by_row[1][0] and "none of them" in by_row[1][0]
    assert any("more than 2 times its 20 points" in said for said in by_row[3])
    assert any("exponent notation" in said for said in by_row[3])
    assert all("has 2 rows (2, 4)" in said for said in by_row[2] + by_row[4])
    assert any("digits other than 0-9" in said for said in by_row[5])
    # A person outside the class is not named (a sheet is no way to look people up).
    assert by_row[6] == [
        "No student of this class is 'una@school.example': check the email or SIS identifier, "
        "or enrol the student."
    ]
    # Only the Lab cell of the identified student was set; what was refused changed nothing.
    assert done["imported"] == 1
    assert _scores(world, "Lab") == {c: 8.0}
    assert _scores(world, "Essay") == {} and _scores(world, "Quiz") == {}


def test_students_and_teachers_are_named_by_their_sis_identifier_too(
    world: World, tmp_path: Path
) -> None:
    from sislink.classroom.models import Person

    cls = str(world.class_id)
    work = world.add_coursework("Essay", points=20)
    a, _, _ = _emails(world)
    with world.classroom.transaction() as session:
        student = session.scalars(select(Person).where(Person.email == a)).one()
        student.sis_identifier = "S-1001"
        teacher = session.scalars(select(Person).where(Person.email == world.teacher_email)).one()
        teacher.sis_identifier = "T-77"
    set_by_ids = _json(
        world,
        tmp_path,
        *("marks", "set", cls, "--coursework", str(work), "--student", "S-1001"),
        *("--score", "15", "--as", "T-77", "--json"),
    )
    assert set_by_ids["student"] == a and set_by_ids["score"] == 15
    code, text = _run(
        world,
        tmp_path,
        *("marks", "set", cls, "--coursework", str(work), "--student", "S-9999"),
        *("--score", "15", "--as", "T-77"),
    )
    assert code == 1 and "No student of this class is 'S-9999'" in text
    # A student of the school outside the class is not named: the teacher learns nothing.
    with world.classroom.transaction() as session:
        people.create_person(
            session,
            Actor.system(),
            name="Una Other",
            email="una@school.example",
            roles=[Role.STUDENT],
        ).sis_identifier = "S-5005"
    code, text = _run(
        world,
        tmp_path,
        *("marks", "set", cls, "--coursework", str(work), "--student", "S-5005"),
        *("--score", "15", "--as", "T-77"),
    )
    assert code == 1 and "No student of this class is 'S-5005'" in text
    assert "Una" not in text and "una@" not in text
    code, text = _run(world, tmp_path, "marks", "report", cls, "--as", "T-404")
    assert code == 1 and "No active person has the email or SIS identifier 'T-404'" in text
    # The extra-credit limit is the class's: shown and set with `classes settings`.
    shown = _json(world, tmp_path, "classes", "settings", cls, "--as", "T-77", "--json")
    assert shown["extra_credit_limit"] == 2.0
    _json(world, tmp_path, "classes", "settings", cls, "--extra-credit-limit", "1", "--json")
    code, text = _run(
        world,
        tmp_path,
        *("marks", "set", cls, "--coursework", str(work), "--student", a),
        *("--score", "21", "--as", "T-77"),
    )
    assert code == 1 and "more than 1 times its 20 points" in text


def test_a_due_day_on_the_command_line_is_that_day_in_the_schools_time_zone(
    world: World, tmp_path: Path
) -> None:
    """`--due 2026-10-01` is noon of that day for the school: in New Zealand (UTC+12/13) noon
    UTC would be the next day, which the export's grading periods go by."""
    with world.classroom.transaction() as session:
        time_zone.set_school_time_zone(session, Actor.system(), "Pacific/Auckland")
    due = world.due_in_period().date().isoformat()
    code, text = _run(
        world,
        tmp_path,
        "coursework",
        "add",
        str(world.class_id),
        "--title",
        "Essay",
        "--points",
        "20",
        "--due",
        due,
        "--as",
        world.teacher_email,
        "--json",
    )
    assert code == 0, text
    with world.classroom.session() as session:
        work = session.get(Coursework, json.loads(text)["id"])
        assert work is not None and work.due_date is not None
        local = work.due_date.astimezone(ZoneInfo("Pacific/Auckland"))
        assert (local.date().isoformat(), local.hour) == (due, 12)
