"""In a real browser, at 1280 px and 390 px: the administrator sets the school's time zone on
the School page (a wrong name is refused next to the field), switches the console to Spanish
with the picker at the foot of the page (Chromium asks for en-US, so it starts in English), and
reads a page in Spanish with its times in the school's zone. axe-core finds no critical or
serious violation on any page the walk opens, and no page scrolls sideways."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from playwright.sync_api import Browser, Page, expect

from browser.accessibility import assert_accessible
from browser.conftest import ADMIN_EMAIL, PASSWORD, LiveConsole
from sislink.classroom import Actor
from sislink.classroom.services import people
from sislink.classroom.services.api_tokens import create_api_token

Shoot = Callable[[Page, str], None]


def checked(page: Page) -> None:
    page.wait_for_load_state("load")
    wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert wide <= 0, f"{page.url} scrolls {wide} px sideways"
    assert_accessible(page)


@pytest.mark.parametrize("width", [1280, 390])
def test_the_school_time_zone_and_the_console_in_spanish(
    browser: Browser, live_console: LiveConsole, shoot: Shoot, width: int
) -> None:
    live = live_console
    with live.classroom.transaction() as session:
        ada = people.find_person_by_email(session, ADMIN_EMAIL)
        assert ada is not None
        row, _token = create_api_token(session, Actor.system(), ada, label="nightly")
        row.created_at = datetime(2026, 1, 15, 15, 5, tzinfo=UTC)
    context = browser.new_context(viewport={"width": width, "height": 860})
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.goto(f"{live.url}/login")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.fill("#email", ADMIN_EMAIL)
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")

    if width < 760:
        page.click("label.menu-button")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="School").click()
    expect(page.locator("h1")).to_have_text("School")
    checked(page)
    page.fill("#time_zone", "Mars/Base")
    page.click("#save-time-zone")
    expect(page.locator("#time_zone-error")).to_contain_text("“Mars/Base” is not a time zone")
    checked(page)
    page.fill("#time_zone", "America/Chicago")
    page.click("#save-time-zone")
    expect(page.locator("#flash")).to_contain_text("The school's time zone is now America/Chicago")
    expect(page.locator("#current-zone")).to_have_text("America/Chicago")
    shoot(page, f"admin-school-{width}")

    page.select_option("#language-choice", "es")
    page.click("#choose-language")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.locator("h1")).to_have_text("Escuela")
    checked(page)
    page.goto(f"{live.url}/admin/tokens")
    expect(page.locator("h1")).to_have_text("Tokens de API")
    expect(page.locator("#tokens table")).to_contain_text("15 ene 2026, 9:05 CST")
    checked(page)
    shoot(page, f"admin-tokens-es-{width}")
    context.close()
