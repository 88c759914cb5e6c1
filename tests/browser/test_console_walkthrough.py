"""In a real browser, against the built-in SIS over HTTP: the administrator connects,
authorises, sets the teacher permission and imports the roster; a teacher sets a password from
their invitation, links a class, adds coursework, enters marks, exports with live progress and
reads the report, changes a coursework's category and deletes one; with the permission off,
export is hidden and refused. The walk runs at a laptop's 1280 px and a phone's 390 px (the
navigation, Sign out included, through the Menu button); axe runs on every page it opens
(conftest's axe_on_every_page)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

import pytest
from playwright.sync_api import Browser, Page, expect

from browser.accessibility import assert_accessible
from browser.conftest import ADMIN_EMAIL, PASSWORD, LiveConsole
from sislink.classroom import Actor
from sislink.classroom.services import coursework, people
from sislink.oneroster.provider.server import RunningProvider

Shoot = Callable[[Page, str], None]
WIDTHS = [1280, 390]


# Whether leaving the page now asks first: its beforeunload handlers cancel the event.
LEAVING_IS_ASKED = """() => {
  const leaving = new Event("beforeunload", {cancelable: true});
  window.dispatchEvent(leaving);
  return leaving.defaultPrevented;
}"""


def sign_in(page: Page, url: str, email: str) -> None:
    page.goto(f"{url}/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")


def go(page: Page, width: int, name: str) -> None:
    """Follow a navigation link, through the Menu button on a phone."""
    if width < 760:
        page.click("label.menu-button")
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()


def sign_out(page: Page, width: int) -> None:
    if width < 760:
        page.click("label.menu-button")
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("h1")).to_contain_text("Sign in")


def administrator_sets_up(
    page: Page, live: LiveConsole, sis: RunningProvider, shoot: Shoot, width: int = 1280
) -> None:
    sign_in(page, live.url, ADMIN_EMAIL)
    expect(page.locator("h1")).to_have_text("Connect to your SIS")
    page.get_by_role("row", name=re.compile("OneRoster 1.2 SIS")).get_by_role("link").click()
    expect(page.locator("#steps")).to_contain_text("Token URL")
    page.fill("#host_url", sis.host_url)
    page.fill("#token_url", sis.token_url)
    page.fill("#access_key", sis.client_id)
    page.fill("#secret_code", sis.client_secret)
    page.check("input[name=insecure]")
    page.click("#connect-button")
    expect(page.locator("#flash")).to_contain_text("now click Authorise")
    expect(page.locator("#secret-state")).to_have_text("set")
    page.click("#authorise")
    expect(page.locator("#authorise-result")).to_contain_text("Authorised")
    expect(page.locator("#connection-status")).to_have_text("authorised")
    assert sis.client_secret not in page.content()
    expect(page.locator("#teacher_export")).to_be_checked()
    page.uncheck("#teacher_export")
    page.click("#save-permission")
    expect(page.locator("#flash")).to_contain_text("off for teachers")
    page.check("#teacher_export")
    page.click("#save-permission")
    expect(page.locator("#flash")).to_contain_text("teachers may now export")
    assert_accessible(page)
    shoot(page, f"admin-sis-setup-{width}")

    # The other settings pages an administrator sets up: Google Classroom and sign-in.
    go(page, width, "Google Classroom")
    expect(page.locator("h1")).to_have_text("Connect Google Classroom")
    assert_accessible(page)
    shoot(page, f"admin-google-{width}")
    go(page, width, "Sign-in")
    expect(page.locator("#redirect-uri")).to_contain_text("/login/oidc/callback")
    assert_accessible(page)  # with a provider: admin-sign-in-provider-*.png (the OIDC tests)

    go(page, width, "Roster")
    page.check("input[name=full]")
    page.click("#import-now")
    # The job page polls the job and reloads once it has ended.
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=60_000)
    expect(page.locator("table.counts")).to_contain_text("students")
    page.click("text=← Roster")
    assert_accessible(page)
    shoot(page, f"admin-roster-{width}")


@pytest.mark.parametrize("width", WIDTHS)
def test_administrator_and_teacher_walk_through_the_console(
    browser: Browser, live_console: LiveConsole, sis: RunningProvider, shoot: Shoot, width: int
) -> None:
    live = live_console
    administrator = browser.new_context(viewport={"width": width, "height": 900})
    administrator.set_default_timeout(20_000)
    page = administrator.new_page()
    page.goto(f"{live.url}/login")
    assert_accessible(page)
    shoot(page, f"sign-in-{width}")
    administrator_sets_up(page, live, sis, shoot, width)

    teacher = browser.new_context(viewport={"width": width, "height": 900})
    teacher.set_default_timeout(20_000)
    tab = teacher.new_page()
    tab.goto(live.invite(sis.teacher_email))
    tab.fill("#password", PASSWORD)
    tab.fill("#confirm", PASSWORD)
    tab.click("button[type=submit]")
    expect(tab.locator("h1")).to_have_text("My classes")
    expect(tab.locator("#flash")).to_contain_text("Your password is set")
    assert_accessible(tab)
    shoot(tab, f"teacher-my-classes-{width}")
    tab.locator("#my-classes a").first.click()
    class_url = tab.url

    # Relink: unlink the class the roster import linked, then choose one of my SIS classes.
    # Unlinking asks first (a confirmation dialog); dismissed, nothing happens.
    asked: list[str] = []
    tab.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    tab.get_by_role("button", name="Unlink").click()
    expect(tab.locator("#link-state")).not_to_contain_text("not linked")
    assert asked and asked[0].startswith("Unlink this class"), asked
    tab.once("dialog", lambda dialog: dialog.accept())
    tab.get_by_role("button", name="Unlink").click()
    expect(tab.locator("#link-state")).to_contain_text("not linked")
    tab.click("#link-class")
    tab.locator("input[name=sis_class]").first.check()
    tab.click("#link-button")
    expect(tab.locator("#flash")).to_contain_text("Linked to SIS class")

    tab.click("#new-coursework")
    tab.fill("#title", "<b>Essay</b> on rivers")
    tab.fill("#points", "ten")
    tab.click("#save-coursework")
    expect(tab.locator("#points-error")).to_contain_text("positive number")
    tab.fill("#points", "20")
    tab.fill("#due", date.today().isoformat())  # inside the seeded school year
    tab.select_option("#category_id", label="Homework")
    tab.click("#save-coursework")
    expect(tab.locator("#flash")).to_contain_text("Coursework added: <b>Essay</b> on rivers")
    tab.click("#new-coursework")
    tab.fill("#title", "Quiz without a due date")
    tab.fill("#points", "10")
    tab.click("#save-coursework")
    # The class is linked: the form says what the SIS needs before saving, typed text kept.
    expect(tab.locator("#due-error")).to_contain_text("The SIS needs a due date")
    expect(tab.locator("#title")).to_have_value("Quiz without a due date")
    assert_accessible(tab)
    # Added by the command line or the API instead, it reaches the export, which skips it.
    class_id = int(class_url.rstrip("/").rsplit("/", 1)[1])
    with live.classroom.transaction() as session:
        me = people.find_person_by_email(session, sis.teacher_email)
        assert me is not None
        coursework.create_coursework(
            session,
            Actor.of(me),
            class_id,
            title="Quiz without a due date",
            max_points=10,
            publish=True,
        )
    tab.goto(class_url)
    shoot(tab, f"teacher-class-{width}")

    tab.click("#open-gradebook")
    cells = tab.locator('table.grid input[aria-label$="on rivers"]')
    cells.nth(0).fill("18")
    cells.nth(1).fill("EX")
    cells.nth(2).fill("M")
    cells.nth(3).fill("twelve")
    # Typed, not saved: the page says so and leaving it asks first.
    expect(tab.locator("#unsaved")).to_have_text("4 cells not saved yet.")
    assert tab.evaluate(LEAVING_IS_ASKED)
    tab.click("#save-marks")
    expect(tab.locator("#grid-errors")).to_contain_text("is not a number")
    tab.locator("table.grid td.invalid input").fill("12")
    tab.click("#save-marks")
    expect(tab.locator("#flash")).to_contain_text("Saved 1 mark")
    assert not tab.evaluate(LEAVING_IS_ASKED)  # everything saved: leaving asks nothing
    tab.click("#return-all")
    expect(tab.locator("#flash")).to_contain_text("Returned 4 marks")
    assert_accessible(tab)
    shoot(tab, f"teacher-gradebook-{width}")

    tab.goto(class_url)
    tab.click("#export-marks")
    # The progress page polls the export job and opens the report once it has ended.
    expect(tab.locator("h1")).to_have_text("Troubleshoot mark export", timeout=60_000)
    # The quiz without a due date was skipped: the export needs attention, not a green badge.
    expect(tab.locator("#report-outcome")).to_contain_text("needs attention")
    expect(tab.locator("tr.item.skipped").first).to_contain_text("It has no due date")
    expect(tab.locator("#summary")).to_contain_text("4 exported")  # the 4 returned marks
    expect(tab.locator("tr.item.exported").first).to_be_visible()
    assert_accessible(tab)
    shoot(tab, f"teacher-troubleshoot-{width}")

    # The essay's category changes on its edit form; the quiz is deleted, after a question.
    tab.goto(class_url)
    essay = tab.get_by_role("row", name=re.compile("on rivers"))
    essay.get_by_role("link", name="Edit").click()
    expect(tab.locator("#category_id")).to_have_value(re.compile(r"\d+"))
    other = tab.locator("#category_id option:not([value=''])").filter(has_not_text="Homework")
    category = other.first.inner_text()
    tab.select_option("#category_id", label=category)
    tab.click("#save-coursework")
    expect(tab.get_by_role("row", name=re.compile("on rivers"))).to_contain_text(category)
    assert_accessible(tab)
    quiz = tab.get_by_role("row", name=re.compile("Quiz without a due date"))
    asked.clear()
    tab.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    quiz.get_by_role("button", name="Delete").click()
    expect(tab.get_by_role("row", name=re.compile("Quiz without a due date"))).to_have_count(0)
    assert asked and asked[0].startswith("Delete this coursework?"), asked
    assert_accessible(tab)
    sign_out(tab, width)

    go(page, width, "Activity")
    expect(page.locator("#exports")).to_contain_text("needs attention")
    assert_accessible(page)
    shoot(page, f"admin-activity-{width}")
    sign_out(page, width)
    teacher.close()
    administrator.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_with_the_permission_off_export_is_hidden_and_refused(
    browser: Browser, live_console: LiveConsole, sis: RunningProvider, width: int
) -> None:
    live = live_console
    administrator = browser.new_context(viewport={"width": width, "height": 900})
    administrator.set_default_timeout(20_000)
    page = administrator.new_page()
    administrator_sets_up(page, live, sis, lambda *_: None, width)
    page.goto(f"{live.url}/admin/sis")
    page.uncheck("#teacher_export")
    page.click("#save-permission")
    expect(page.locator("#flash")).to_contain_text("off for teachers")
    # Disconnecting says first what it does (read here, not done); a missing page says so.
    page.click("#disconnect-link")
    expect(page.locator("h1")).to_contain_text("Disconnect from")
    assert_accessible(page)
    missing = page.goto(f"{live.url}/classes/999999")
    assert missing is not None and missing.status == 404
    assert_accessible(page)
    administrator.close()

    teacher = browser.new_context(viewport={"width": width, "height": 900})
    teacher.set_default_timeout(20_000)
    tab = teacher.new_page()
    tab.goto(live.invite(sis.teacher_email))
    tab.fill("#password", PASSWORD)
    tab.fill("#confirm", PASSWORD)
    tab.click("button[type=submit]")
    expect(tab.locator("#permission-off")).to_be_visible()
    tab.locator("#my-classes a").first.click()
    expect(tab.locator("#export-marks")).to_have_count(0)
    expect(tab.locator("#export-refused")).to_contain_text("switched off for teachers")
    # Sending the export form anyway (with this session's CSRF token) is refused.
    token = tab.locator("input[name=csrf_token]").first.get_attribute("value")
    class_path = tab.url.removeprefix(live.url)
    refused = tab.request.post(f"{live.url}{class_path}/export", form={"csrf_token": token or ""})
    assert refused.status == 403
    assert "switched off" in refused.text()
    teacher.close()
