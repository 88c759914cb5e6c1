"""The teacher's command line against the built-in SIS: list and link classes, add coursework,
set and import marks, export (only changes the second time), read the report; another teacher
is refused in plain words."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sislink.classroom import Actor, open_classroom
from sislink.classroom.models import Role
from sislink.classroom.services import people
from sislink.cli import app
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.settings import Settings
from sync.mark_export_world import World, build_world


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
    assert code == 2
    imported = json.loads(text)
    assert imported["imported"] == 3
    problems = {(p["row"], p["column"]): p["problem"] for p in imported["problems"]}
    assert "'abc' is not a number" in problems[(3, "Essay")]
    assert "no student has this email" in problems[(4, "email")]
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
