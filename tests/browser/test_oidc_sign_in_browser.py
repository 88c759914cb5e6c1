"""Signing in with the school's accounts in a real browser (issue 18): the sign-in page's
"Sign in with <provider>" button, the provider's own page (oidc-provider on 127.0.0.1), and
back to sislink as a teacher, as an administrator, or refused with a sentence; at a laptop's
1280 px and a phone's 390 px (axe on every sislink page, conftest's axe_on_every_page)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect

from browser.conftest import ADMIN_EMAIL, PASSWORD, LiveConsole, free_port
from oidc_provider.running import Client, running_oidc_provider
from sislink.classroom import Actor, open_classroom
from sislink.classroom.models import Role
from sislink.classroom.secrets import SecretBox
from sislink.classroom.services import accounts, people, sign_in
from sislink.console.app import create_app
from sislink.seeddata import district_people

TEACHER = next(p for p in district_people(7, 40) if p.role == "teacher")
SECRET = "browser-client-secret-0123456789"
ACCOUNTS: dict[str, dict[str, object]] = {
    "teacher": {"email": TEACHER.email, "email_verified": True, "name": "T"},
    "admin": {"email": ADMIN_EMAIL, "email_verified": True, "name": "Ada"},
    "stranger": {"email": "stranger@elsewhere.example", "email_verified": True},
}
WIDTHS = [1280, 390]


@pytest.fixture(params=WIDTHS, ids=[str(width) for width in WIDTHS])
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """This module's pages: each test at a laptop's and a phone's width."""
    context = browser.new_context(viewport={"width": request.param, "height": 900})
    context.set_default_timeout(20_000)
    yield context.new_page()
    context.close()


def width_of(page: Page) -> int:
    return page.viewport_size["width"] if page.viewport_size else 1280


def open_menu_on_a_phone(page: Page) -> None:
    if width_of(page) < 760:
        page.click("label.menu-button")


@pytest.fixture(scope="module")
def oidc_console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveConsole]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    client = Client("sislink", SECRET, (f"{url}/login/oidc/callback",), (f"{url}/login",))
    folder: Path = tmp_path_factory.mktemp("oidc-browser")
    with running_oidc_provider([client], ACCOUNTS) as issuer:
        classroom = open_classroom(
            f"sqlite:///{folder / 'console.db'}", secret_box=SecretBox.generate()
        )
        with classroom.transaction() as session:
            system = Actor.system()
            admin = people.create_person(
                session, system, name="Ada Admin", email=ADMIN_EMAIL, roles=[Role.ADMIN]
            )
            accounts.set_password(session, system, admin.id, PASSWORD)
            people.create_person(
                session, system, name="Tom Teacher", email=TEACHER.email, roles=[Role.TEACHER]
            )
            sign_in.set_provider(
                session,
                classroom.secret_box,
                system,
                issuer=issuer,
                client_id="sislink",
                client_secret=SECRET,
                name="District login",
            )
        server = uvicorn.Server(
            uvicorn.Config(create_app(classroom), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, name="console", daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the console did not start")
            time.sleep(0.02)
        try:
            yield LiveConsole(url, classroom)
        finally:
            server.should_exit = True
            thread.join(timeout=20)
            classroom.close()


def sign_in_with_provider(page: Page, console: LiveConsole, login: str) -> None:
    page.goto(f"{console.url}/login")
    page.get_by_role("link", name="Sign in with District login").click()
    page.get_by_label("Login").fill(login)
    page.get_by_role("button", name="Sign in at the provider").click()


def test_a_teacher_signs_in_with_the_school_account_and_sees_their_classes(
    page: Page, oidc_console: LiveConsole, shoot: Callable[[Page, str], None]
) -> None:
    page.goto(f"{oidc_console.url}/login")
    shoot(page, f"sign-in-with-provider-{width_of(page)}")
    sign_in_with_provider(page, oidc_console, "teacher")
    expect(page).to_have_url(f"{oidc_console.url}/classes")
    open_menu_on_a_phone(page)
    expect(page.locator(".me")).to_contain_text(TEACHER.email)
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#end-session")).to_contain_text("sign out of District login too")


def test_an_administrator_signs_in_and_reaches_the_sign_in_settings(
    page: Page, oidc_console: LiveConsole, shoot: Callable[[Page, str], None]
) -> None:
    sign_in_with_provider(page, oidc_console, "admin")
    expect(page).to_have_url(f"{oidc_console.url}/admin/sis")
    open_menu_on_a_phone(page)
    page.get_by_role("link", name="Sign-in").click()
    expect(page.locator("#redirect-uri")).to_have_text(f"{oidc_console.url}/login/oidc/callback")
    expect(page.get_by_role("cell", name="District login")).to_be_visible()
    shoot(page, f"admin-sign-in-provider-{width_of(page)}")


def test_someone_not_in_the_roster_is_refused_with_a_sentence(
    page: Page, oidc_console: LiveConsole
) -> None:
    sign_in_with_provider(page, oidc_console, "stranger")
    expect(page.get_by_role("alert")).to_contain_text(
        "stranger@elsewhere.example is not a teacher or administrator in sislink"
    )
    page.goto(f"{oidc_console.url}/classes")
    expect(page).to_have_url(f"{oidc_console.url}/login?next=/classes")
