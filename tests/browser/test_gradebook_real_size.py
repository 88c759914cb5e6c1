"""The gradebook at real size in a real browser (Debian's chromium), at a laptop's 1280 px and a
phone's 390 px: 35 students x 40 coursework. Arrow keys and Enter move between cells as in a
sheet (left and right only once the caret is at the edge of the text), the header row and the
student column stay in place while the grid scrolls inside its own frame, the page never
scrolls sideways, and Save marks stays on screen wherever the grid is scrolled. Against the
built-in SIS, after a real export, a cell moved to says its export state and why it was skipped.
axe-core finds no critical or serious violation on any of it."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from browser.accessibility import assert_accessible
from browser.conftest import PASSWORD, LiveConsole
from sislink.classroom import Actor
from sislink.classroom.models import EnrolmentRole, Role
from sislink.classroom.services import accounts, classes, coursework, marks, people
from sislink.oneroster.provider.server import RunningProvider
from sync.mark_export_world import World, build_world

Shoot = Callable[[Page, str], None]
WIDTHS = [1280, 390]
STUDENTS = 35
COURSEWORK = 40
TEACHER = "tess@school.example"


def seed_class(live: LiveConsole) -> int:
    """A teacher (with a password) and a class of 35 students x 40 coursework, every cell
    marked; every other coursework's marks returned, a few excused or missing."""
    system = Actor.system()
    with live.classroom.transaction() as session:
        teacher = people.create_person(
            session, system, name="Tess Teacher", email=TEACHER, roles=[Role.TEACHER]
        )
        accounts.set_password(session, system, teacher.id, PASSWORD)
        made = classes.create_class(
            session, system, title="Biology 10", primary_teacher_id=teacher.id
        )
        students = []
        for n in range(STUDENTS):
            student = people.create_person(
                session,
                system,
                name=f"Student {n:02d} with a longer family name",
                email=f"s{n:02d}@students.example",
                roles=[Role.STUDENT],
            )
            classes.enrol(session, system, made.id, student.id, EnrolmentRole.STUDENT)
            students.append(student.id)
        start = datetime(2026, 9, 1, 12, tzinfo=UTC)
        for n in range(COURSEWORK):
            work = coursework.create_coursework(
                session,
                system,
                made.id,
                title=f"Assignment {n + 1:02d} on cells",
                max_points=20,
                due_date=start + timedelta(days=n),
                publish=True,
            )
            for index, student_id in enumerate(students):
                if (index + n) % 17 == 0:
                    marks.set_mark(session, system, work.id, student_id, excused=True)
                elif (index + n) % 13 == 0:
                    marks.set_mark(session, system, work.id, student_id, missing=True)
                else:
                    marks.set_mark(session, system, work.id, student_id, score=(index + n) % 21)
            if n % 2:
                marks.return_marks(session, system, work.id)
        return made.id


def sign_in(page: Page, url: str, email: str) -> None:
    page.goto(f"{url}/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("My classes")


def no_sideways_scroll(page: Page) -> None:
    page.wait_for_load_state("load")
    wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert wide <= 0, f"{page.url} scrolls {wide} px sideways"


def focused_label(page: Page) -> str:
    return str(page.evaluate("document.activeElement.getAttribute('aria-label')"))


def box(locator: Locator) -> dict[str, float]:
    found = locator.bounding_box()
    assert found is not None
    return found


def cell(page: Page, student: int, work: int) -> Locator:
    return page.locator(
        f'table.grid input[aria-label="Student {student:02d} with a longer family name, '
        f'Assignment {work:02d} on cells"]'
    )


@pytest.mark.parametrize("width", WIDTHS)
def test_a_35_by_40_gradebook_moves_like_a_sheet_and_keeps_save_on_screen(
    browser: Browser, live_console: LiveConsole, shoot: Shoot, width: int
) -> None:
    class_id = seed_class(live_console)
    context = browser.new_context(viewport={"width": width, "height": 860})
    context.set_default_timeout(20_000)
    page = context.new_page()
    sign_in(page, live_console.url, TEACHER)
    page.goto(f"{live_console.url}/classes/{class_id}/gradebook")
    expect(page.locator("table.grid tbody tr")).to_have_count(STUDENTS)
    expect(page.locator("table.grid input")).to_have_count(STUDENTS * COURSEWORK)
    no_sideways_scroll(page)  # the grid scrolls in its own frame
    assert_accessible(page)
    save = page.locator("#save-marks")
    expect(save).to_be_in_viewport()
    shoot(page, f"teacher-gradebook-35x40-{width}")

    # Arrow keys and Enter move between cells, as in a sheet; the cell's label stays its own.
    cell(page, 0, 1).focus()
    page.keyboard.press("ArrowDown")
    assert focused_label(page) == "Student 01 with a longer family name, Assignment 01 on cells"
    page.keyboard.press("Enter")
    assert focused_label(page).startswith("Student 02 ")
    page.keyboard.press("Shift+Enter")
    page.keyboard.press("ArrowUp")
    assert focused_label(page).startswith("Student 00 ")
    page.keyboard.press("ArrowUp")  # the top edge: nothing moves
    assert focused_label(page).startswith("Student 00 ")
    page.keyboard.press("ArrowRight")  # moved to, its text is selected: right moves on
    assert focused_label(page).endswith("Assignment 02 on cells")
    page.keyboard.type("15")  # typing replaces it; the caret ends after the 5
    page.keyboard.press("ArrowLeft")  # inside the text, the caret moves, not the focus
    assert focused_label(page).endswith("Assignment 02 on cells")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")  # at the start: now it moves to the cell on the left
    assert focused_label(page).endswith("Assignment 01 on cells")
    page.keyboard.press("ArrowLeft")  # the first column: nothing moves
    assert focused_label(page).endswith("Assignment 01 on cells")
    expect(page.locator("#unsaved")).to_have_text("1 cell not saved yet.")
    # The focused cell's words are under the grid, next to Save.
    expect(page.locator("#cell-about")).to_contain_text(
        "Student 00 with a longer family name, Assignment 01 on cells: Draft, not returned yet"
    )

    # Scrolled to the bottom-right corner of the grid: Save is on screen, wherever the page is
    # scrolled; at the bottom of the page, so is the last cell, with the header row and the
    # student column still in place.
    frame = page.locator("#grid-frame")
    page.evaluate(
        """() => { const f = document.getElementById("grid-frame");
                   f.scrollTop = f.scrollHeight; f.scrollLeft = f.scrollWidth; }"""
    )
    expect(save).to_be_in_viewport()
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    expect(save).to_be_in_viewport()
    last = cell(page, STUDENTS - 1, COURSEWORK)
    expect(last).to_be_in_viewport()
    header = page.locator("table.grid thead th").nth(5)
    name = page.locator("table.grid tbody th").nth(STUDENTS - 1)
    assert abs(box(header)["y"] - box(frame)["y"]) < 3  # the header row is fixed
    assert abs(box(name)["x"] - box(frame)["x"]) < 3  # so is the student column
    no_sideways_scroll(page)
    shoot(page, f"teacher-gradebook-35x40-corner-{width}")
    page.evaluate("window.scrollTo(0, 0)")
    expect(save).to_be_in_viewport()

    # The last cell reached from the keyboard is not hidden under the fixed header or column;
    # typed there and saved with the button on screen, both typed cells are saved.
    last.focus()
    last.select_text()  # as Tab leaves it
    page.keyboard.type("EX")
    expect(page.locator("#unsaved")).to_have_text("2 cells not saved yet.")
    header_bottom = box(page.locator("table.grid thead")).get("height", 0) + box(frame)["y"]
    assert box(last)["y"] >= header_bottom - 1
    save.click()
    expect(page.locator("#flash")).to_contain_text("Saved 2 marks")
    expect(cell(page, 0, 2)).to_have_value("15")
    expect(cell(page, STUDENTS - 1, COURSEWORK)).to_have_value("EX")
    no_sideways_scroll(page)
    assert_accessible(page)
    context.close()


def _world(sis: RunningProvider, live: LiveConsole) -> World:
    """The SIS's teacher, one of their classes with 6 of its students, linked (in a thread of
    its own: Playwright keeps an event loop marked as running in this one)."""
    built: dict[str, Any] = {}

    def build() -> None:
        built["world"] = asyncio.run(build_world(sis, live.classroom, students=6))

    thread = threading.Thread(target=build)
    thread.start()
    thread.join(timeout=120)
    world = built["world"]
    assert isinstance(world, World)
    return world


@pytest.mark.parametrize("width", WIDTHS)
def test_after_a_real_export_each_cell_says_its_export_state_on_hover_and_focus(
    browser: Browser, live_console: LiveConsole, sis: RunningProvider, shoot: Shoot, width: int
) -> None:
    world = _world(sis, live_console)
    with live_console.classroom.transaction() as session:
        assert world.teacher.person_id is not None
        accounts.set_password(session, Actor.system(), world.teacher.person_id, PASSWORD)
    essay = world.add_coursework("Essay", points=20)
    with live_console.classroom.transaction() as session:
        # Made by the command line or the API without a due date: the export skips it.
        quiz = coursework.create_coursework(
            session,
            world.teacher,
            world.class_id,
            title="Quiz",
            max_points=10,
            category_id=world.categories["Homework"],
            publish=True,
        ).id
    first, second, third = world.students[:3]
    world.mark(essay, first, score=18)
    world.mark(essay, second, excused=True)
    world.mark(essay, third, score=12, returned=False)
    world.mark(quiz, first, score=7)

    context = browser.new_context(viewport={"width": width, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    sign_in(page, live_console.url, world.teacher_email)
    page.goto(f"{live_console.url}/classes/{world.class_id}")
    page.click("#export-marks")
    expect(page.locator("h1")).to_have_text("Troubleshoot mark export", timeout=60_000)
    page.goto(f"{live_console.url}/classes/{world.class_id}/gradebook")

    sent = page.locator(f'input[name="m{essay}_{first}"]')
    expect(sent.locator("xpath=..")).to_have_class("returned x-sent")
    expect(page.locator(f"#d{cell_name(sent)}")).to_have_text(_starts("Returned. Sent to the SIS "))
    sent.hover()  # the pointer on a cell: its words under the grid too
    expect(page.locator("#cell-about")).to_contain_text("Returned. Sent to the SIS ")
    skipped = page.locator(f'input[name="m{quiz}_{first}"]')
    skipped.focus()
    expect(page.locator("#cell-about")).to_contain_text("Skipped by the last export")
    expect(page.locator("#cell-about")).to_contain_text("Its coursework could not go to the SIS")
    # Its description is read with it, and the same words show on hover.
    described = skipped.get_attribute("aria-describedby")
    assert described
    words = page.locator(f"#{described}").text_content()
    assert words and "Its coursework could not go to the SIS" in words
    expect(skipped.locator("xpath=..")).to_have_attribute("title", words)
    expect(skipped.locator("xpath=..").locator("i")).to_have_text("!")
    draft = page.locator(f'input[name="m{essay}_{third}"]')
    expect(draft.locator("xpath=..").locator("i")).to_have_text("D")
    expect(page.locator("table.grid thead th").filter(has_text="Quiz")).to_have_attribute(
        "title", _contains("It has no due date")
    )
    assert_accessible(page)
    shoot(page, f"teacher-gradebook-export-states-{width}")
    context.close()


def cell_name(cell: Locator) -> str:
    name = cell.get_attribute("name")
    assert name
    return name


def _starts(prefix: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(prefix))


def _contains(part: str) -> re.Pattern[str]:
    return re.compile(re.escape(part))
