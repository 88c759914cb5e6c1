"""The gradebook's cells after a real export to the built-in SIS over HTTP: each says its
export state (sent, changed since, skipped with the export's reason, the SIS did not take it),
its mark's state by a letter and in words (draft, returned, excused, missing), and each student
has a total (excused left out); a class not linked says so instead."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import event, select

from console.console_world import (
    ADMIN_EMAIL,
    Console,
    PageClient,
    connect_and_authorise,
    console,
    import_roster,
    invite_and_sign_in,
)
from sislink.classroom import Actor
from sislink.classroom.models import Category, ClassLink, Coursework, EnrolmentRole, Mark, Role
from sislink.classroom.services import classes, marks, people
from sislink.classroom.services import coursework as coursework_service
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.sync.gradebook_export_state import ExportState, gradebook_export_state


@pytest.fixture(scope="module")
def sis() -> Iterator[RunningProvider]:
    with running_provider(profile="generic-1.2", students=40) as running:
        yield running


@dataclass
class School:
    served: Console
    teacher: PageClient
    class_id: int
    students: list[int]  # the class's students by name, as the grid lists them


@pytest.fixture
def school(sis: RunningProvider, tmp_path: Path) -> Iterator[School]:
    """Connected, roster imported (which links the class), the SIS's teacher signed in."""
    with console(tmp_path) as served:
        admin = served.client()
        admin.sign_in(ADMIN_EMAIL)
        connect_and_authorise(admin, sis)
        import_roster(served, admin)
        teacher = invite_and_sign_in(served, sis.teacher_email)
        class_id = int(re.findall(r'href="/classes/(\d+)"', teacher.get("/classes").text)[0])
        with served.classroom.session() as session:
            students = [p.id for p in classes.members(session, class_id, EnrolmentRole.STUDENT)]
        yield School(served, teacher, class_id, students)


@dataclass(frozen=True)
class Cell:
    classes: set[str]
    about: str  # its words: hover (title) and screen readers (aria-describedby)
    flags: str  # the letter and symbol shown


CELL = re.compile(
    r'<td(?: class="(?P<classes>[^"]*)")?(?: title="(?P<title>[^"]*)")?>'
    r'<input name="(?P<name>m\d+_\d+)"[^>]*>'
    r'(?:<i aria-hidden="true">(?P<flags>.*?)</i>)?'
    r'(?:<span class="gb-vh" id="d(?P=name)">(?P<about>.*?)</span>)?'
)


def cells(page: str) -> dict[str, Cell]:
    found = {}
    for match in CELL.finditer(page):
        about = html.unescape(match.group("about") or "")
        classes = set((match.group("classes") or "").split())
        # On hover: the words of what was skipped, refused or changed since sent.
        flags = re.sub(r"<[^>]+>", "", match.group("flags") or "")
        hovered = bool(classes & {"x-failed", "x-changed"}) or "!" in flags
        assert html.unescape(match.group("title") or "") == (about if hovered else ""), match[0]
        found[match.group("name")] = Cell(classes, about, flags)
    return found


def totals(page: str) -> list[str]:
    return [html.unescape(t) for t in re.findall(r'<td class="total">([^<]*)</td>', page)]


def add_coursework(served: Console, teacher_email: str, class_id: int, **values: object) -> int:
    with served.classroom.transaction() as session:
        me = people.find_person_by_email(session, teacher_email)
        assert me is not None
        made = coursework_service.create_coursework(
            session, Actor.of(me), class_id, publish=True, **values
        )
        return made.id


def test_each_cell_says_what_the_last_export_did_with_its_mark(
    school: School, sis: RunningProvider
) -> None:
    teacher, cid, served = school.teacher, school.class_id, school.served
    with served.classroom.session() as session:
        homework = session.scalars(
            select(Category.id).where(Category.class_id == cid, Category.title == "Homework")
        ).one()
    today = date.today().isoformat()  # inside the seeded school year
    made = teacher.post(
        f"/classes/{cid}/coursework",
        {
            "title": "Essay",
            "points": "20",
            "due": today,
            "category_id": str(homework),
            "publish": "on",
            "export_to_sis": "on",
        },
    )
    assert "Coursework added: Essay." in made.text
    with served.classroom.session() as session:
        essay = session.scalars(
            select(Coursework.id).where(Coursework.class_id == cid, Coursework.title == "Essay")
        ).one()
    # Added by the command line or the API, without a due date: the export skips it.
    quiz = add_coursework(served, sis.teacher_email, cid, title="Quiz", max_points=10)
    # A student the SIS class does not have: the export skips their mark.
    with served.classroom.transaction() as session:
        stranger = people.create_person(
            session,
            Actor.system(),
            name="Zed Newcomer",
            email="zed.newcomer@elsewhere.example",
            roles=[Role.STUDENT],
        )
        classes.enrol(session, Actor.system(), cid, stranger.id, EnrolmentRole.STUDENT)
        stranger_id = stranger.id
    s0, s1, s2, s3 = school.students[:4]
    teacher.get(f"/classes/{cid}/gradebook")
    saved = teacher.post(
        f"/classes/{cid}/gradebook",
        {
            f"m{essay}_{s0}": "18",
            f"m{essay}_{s1}": "EX",
            f"m{essay}_{s2}": "M",
            f"m{essay}_{stranger_id}": "11",
            f"m{quiz}_{s0}": "7",
        },
    )
    assert "Saved 5 marks as drafts" in saved.text, saved.text
    assert "Returned 5 marks" in teacher.post(f"/classes/{cid}/return", {}).text
    # A draft, left a draft: the export leaves it out by the teacher's choice.
    teacher.post(f"/classes/{cid}/gradebook", {f"m{essay}_{s3}": "12"})

    before = cells(teacher.get(f"/classes/{cid}/gradebook").text)
    assert before[f"m{essay}_{s0}"].classes == {"returned", "x-not_sent"}
    assert before[f"m{essay}_{s0}"].about == ("Returned. Not sent yet: the next export sends it.")
    assert before[f"m{essay}_{s0}"].flags == "\u25cb"

    started = teacher.post(f"/classes/{cid}/export", {})
    served.background.wait_idle()
    assert "Troubleshoot mark export" in teacher.get(str(started.url)).text
    # After the export, the first mark is changed (a returned mark stays returned).
    teacher.get(f"/classes/{cid}/gradebook")
    teacher.post(f"/classes/{cid}/gradebook", {f"m{essay}_{s0}": "19"})

    page = teacher.get(f"/classes/{cid}/gradebook").text
    grid = cells(page)
    changed = grid[f"m{essay}_{s0}"]
    assert changed.classes == {"returned", "x-changed"}
    assert changed.about.startswith(
        "Returned. Changed since it was sent: the next export sends it. (Last sent "
    ) and changed.about.endswith(".)"), changed.about
    assert changed.flags == "\u21bb"
    excused = grid[f"m{essay}_{s1}"]
    assert excused.classes == {"returned", "excused", "x-sent"}
    # (The time is written as the console writes times: its `when` filter.)
    assert re.fullmatch(r"Returned, excused\. Sent to the SIS .*\d.*\.", excused.about), (
        excused.about
    )
    assert excused.flags == "\u2713"
    missing = grid[f"m{essay}_{s2}"]
    assert missing.classes == {"returned", "missing", "x-sent"} and missing.flags == "\u2713"
    assert missing.about.startswith("Returned, missing. Sent to the SIS ")
    draft = grid[f"m{essay}_{s3}"]
    # Skipped by the teacher's own choice: the D says why, no warning symbol.
    assert draft.classes == {"draft", "x-skipped"} and draft.flags == "D"
    assert draft.about == "Draft, not returned yet. Not exported until returned."
    outsider = grid[f"m{essay}_{stranger_id}"]
    assert outsider.classes == {"returned", "x-skipped"} and outsider.flags == "!"
    assert "Skipped by the last export (" in outsider.about
    assert "Zed Newcomer" in outsider.about  # the export's own reason, naming the student
    quiz_mark = grid[f"m{quiz}_{s0}"]
    assert quiz_mark.classes == {"returned", "x-skipped"} and quiz_mark.flags == "!"
    assert "Its coursework could not go to the SIS" in quiz_mark.about
    empty = grid[f"m{quiz}_{s1}"]
    assert empty == Cell(set(), "", "")
    # The coursework's own state, in its column header.
    assert re.search(r'<th scope="col" title="Essay: Sent to the SIS [^"]+">Essay<br>', page)
    quiz_header = re.search(r'<th scope="col" title="Quiz: ([^"]+)">Quiz<br>', page)
    assert quiz_header is not None
    assert "Skipped by the last export" in quiz_header.group(1)
    assert "It has no due date" in quiz_header.group(1)
    # Letters and symbols are explained; nothing is told by colour alone.
    assert 'id="grid-legend"' in page and "draft: students do not see it" in page
    assert "skipped by the last export" in page and "changed since it was sent" in page

    # Totals, in the grid's order (by name); excused is left out, missing counts 0.
    by_row = dict(zip(school.students[:4], totals(page)[:4], strict=True))
    assert by_row[s0] == "26 / 30 (87%)"  # 19 of 20 and 7 of 10
    assert by_row[s1] == "none yet"  # excused only
    assert by_row[s2] == "0 / 20 (0%)"  # missing
    assert by_row[s3] == "12 / 20 (60%)"  # drafts count too
    assert "excused (EX) and empty cells are left out of both" in html.unescape(page)


def test_a_class_not_linked_says_so_instead_of_a_state_per_cell(school: School) -> None:
    teacher, cid = school.teacher, school.class_id
    teacher.get(f"/classes/{cid}/coursework/new")
    teacher.post(f"/classes/{cid}/coursework", {"title": "Lab", "points": "10"})
    unlinked = teacher.post(f"/classes/{cid}/unlink")
    assert "Unlinked" in unlinked.text
    grid_page = teacher.get(f"/classes/{cid}/gradebook").text
    first = re.findall(r'<input name="(m\d+_\d+)"', grid_page)[0]
    saved = teacher.post(f"/classes/{cid}/gradebook", {first: "9.5"})
    assert "Saved 1 mark as draft" in saved.text
    page = saved.text
    assert "This class is not linked to a SIS class, so its marks are not exported." in page
    grid = cells(page)
    assert grid[first] == Cell({"draft"}, "Draft, not returned yet", "D")
    assert not any(c for cell in grid.values() for c in cell.classes if c.startswith("x-"))
    assert "sent to the SIS" not in page  # no export symbols in the legend either
    assert totals(page)[0] == "9.5 / 10 (95%)"


def test_the_state_is_read_in_a_few_queries_whatever_the_size_of_the_class(
    school: School, sis: RunningProvider
) -> None:
    """One query per kind of fact (link, connection, settings, ledger, report list, report
    items), not one per cell: counted with SQLAlchemy's events."""
    cid, served = school.class_id, school.served
    works = [
        add_coursework(served, sis.teacher_email, cid, title=f"Work {n}", max_points=10)
        for n in range(6)
    ]
    with served.classroom.transaction() as session:
        me = people.find_person_by_email(session, sis.teacher_email)
        assert me is not None
        for work in works:
            for student in school.students:
                marks.set_mark(session, Actor.of(me), work, student, score=5)
    school.teacher.post(f"/classes/{cid}/export", {})
    served.background.wait_idle()
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    with served.classroom.session() as session:
        rows = session.scalars(select(Coursework).where(Coursework.class_id == cid)).all()
        found = session.scalars(select(Mark).where(Mark.coursework_id.in_(works))).all()
        assert session.scalars(select(ClassLink).where(ClassLink.class_id == cid)).first()
        engine = session.get_bind()
        event.listen(engine, "before_cursor_execute", count)
        try:
            state = gradebook_export_state(session, cid, rows, found)
        finally:
            event.remove(engine, "before_cursor_execute", count)
    assert len(found) == 6 * len(school.students) and len(school.students) >= 10
    assert len(statements) <= 6, statements
    # Drafts, left out by the last export (read from its report: the last of the statements).
    assert "mark_export_report" in statements[-1]
    assert {state.of_mark(works[0], s).state for s in school.students} == {ExportState.SKIPPED}
