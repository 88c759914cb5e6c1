"""In a real browser, at a laptop's 1280 px and a phone's 390 px: the administrator finds a
student on People, opens them, makes a set-password link for a teacher, filters Classes, reads
the audit trail in words and signs out from the menu; a teacher downloads the gradebook as CSV,
imports a sheet back. No page scrolls sideways as a whole, and axe-core finds no critical or
serious violation on any page the walk opens."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from browser.accessibility import assert_accessible
from browser.conftest import ADMIN_EMAIL, PASSWORD, LiveConsole
from sislink.classroom import Actor
from sislink.classroom.models import EnrolmentRole, Role
from sislink.classroom.services import classes, people

Shoot = Callable[[Page, str], None]
WIDTHS = [1280, 390]


def seed(live: LiveConsole) -> None:
    """A small district made through the services: a teacher, 12 students (one without an
    email), a class with a coursework."""
    from sislink.classroom.services import coursework

    system = Actor.system()
    with live.classroom.transaction() as session:
        teacher = people.create_person(
            session, system, name="Tess Teacher", email="tess@school.example", roles=[Role.TEACHER]
        )
        art = classes.create_class(
            session,
            system,
            title="Art 1 - a long class title that wraps",
            primary_teacher_id=teacher.id,
        )
        for n in range(12):
            student = people.create_person(
                session,
                system,
                name=f"Student {n:02d}",
                email=f"s{n}@school.example",
                roles=[Role.STUDENT],
            )
            if n == 7:
                student.email = student.email_key = None
                student.sis_identifier = "ID-007"
            classes.enrol(session, system, art.id, student.id, EnrolmentRole.STUDENT)
        coursework.create_coursework(
            session, Actor.of(teacher), art.id, title="Essay", max_points=20, publish=True
        )


def no_sideways_scroll(page: Page) -> None:
    """The page does not scroll sideways as a whole, and axe finds nothing serious on it."""
    # A click that navigates returns before the next page has a document: measure that page.
    page.wait_for_load_state("load")
    wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert wide <= 0, f"{page.url} scrolls {wide} px sideways"
    assert_accessible(page)


def go(page: Page, width: int, name: str) -> None:
    """Follow a navigation link, through the Menu button on a phone."""
    if width < 760:
        page.click("label.menu-button")
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()


@pytest.mark.parametrize("width", WIDTHS)
def test_the_administrator_and_a_teacher_at_laptop_and_phone_width(
    browser: Browser, live_console: LiveConsole, shoot: Shoot, width: int, tmp_path: Path
) -> None:
    live = live_console
    seed(live)
    context = browser.new_context(viewport={"width": width, "height": 860})
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.goto(f"{live.url}/login")
    page.fill("#email", ADMIN_EMAIL)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")

    go(page, width, "People")
    expect(page.locator("#people-count")).to_contain_text("14 people")
    expect(page.locator("#no-email-link")).to_contain_text("1 of them has no email")
    no_sideways_scroll(page)
    shoot(page, f"admin-people-{width}")
    page.click("#no-email-link")
    expect(page.locator("#people")).to_contain_text("Student 07")
    page.fill("#q", "tess")
    page.select_option("#role", "")
    page.uncheck("#no_email")
    page.get_by_role("button", name="Show").click()
    page.get_by_role("link", name="Tess Teacher").click()
    expect(page.locator("#person-classes")).to_contain_text("Art 1")
    page.click("#make-invite")
    expect(page.locator("#invite-link")).to_contain_text("/set-password?token=")
    invite = page.locator("#invite-link code").inner_text()
    no_sideways_scroll(page)
    shoot(page, f"admin-person-{width}")

    go(page, width, "Classes")
    page.select_option("#link", "unlinked")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#classes")).to_contain_text("Tess Teacher")
    expect(page.locator("#classes-count")).to_contain_text("1 class: 0 linked, 1 not linked")
    no_sideways_scroll(page)
    shoot(page, f"admin-classes-{width}")

    go(page, width, "Activity")
    expect(page.locator("#audit-lines")).to_contain_text(
        "Ada Admin (ada@district.example) sent a set-password link to Tess Teacher"
    )
    no_sideways_scroll(page)
    go(page, width, "Accounts")
    expect(page.locator("#admins")).to_contain_text("Ada Admin")
    no_sideways_scroll(page)
    if width < 760:
        page.click("label.menu-button")
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("h1")).to_contain_text("Sign in")

    # The teacher: their invitation, the class, the gradebook as a sheet and back.
    page.goto(invite)
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("My classes")
    no_sideways_scroll(page)
    page.locator("#my-classes a").first.click()
    no_sideways_scroll(page)
    page.click("#open-gradebook")
    no_sideways_scroll(page)  # the grid scrolls in its own frame
    with page.expect_download() as downloading:
        page.click("#download-sheet")
    sheet = Path(downloading.value.path()).read_text(encoding="utf-8-sig")
    lines = sheet.splitlines()
    assert lines[0] == "email,Essay" and len(lines) == 13
    first = lines[1].split(",")[0]
    filled = tmp_path / "marks.csv"
    filled.write_text(f"email,Essay\n{first},17\nID-007,EX\n", encoding="utf-8")
    page.click("#import-sheet-link")
    page.set_input_files("#sheet", str(filled))
    page.click("#import-sheet")
    expect(page.locator("#import-result")).to_contain_text(
        "Imported 2 marks, returned to students."
    )
    no_sideways_scroll(page)
    shoot(page, f"teacher-gradebook-import-{width}")
    page.get_by_role("link", name="Open the gradebook").click()
    expect(page.locator("table.grid td.returned input").first).to_have_value("17")
    context.close()
