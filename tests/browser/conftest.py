"""Browser tests: the console served by uvicorn in a background thread on 127.0.0.1 (a free
port) over a SQLite classroom in tmp_path, driven by Playwright's sync API with Debian's
chromium (/usr/bin/chromium; `.ci/run` installs it; never `playwright install`)."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from browser.accessibility import REPORT_BINDING, auto_check_script, describe
from sislink.classroom import Actor, Classroom, open_classroom
from sislink.classroom.models import Role
from sislink.classroom.secrets import SecretBox
from sislink.classroom.services import accounts, people
from sislink.console.app import create_app
from sislink.oneroster.provider.server import RunningProvider, running_provider

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ADMIN_EMAIL = "ada@district.example"
PASSWORD = "correct horse battery staple"
# Set to a directory (e.g. docs/screenshots) to save screenshots of the main pages there.
SCREENSHOTS_VARIABLE = "SISLINK_SCREENSHOTS"


@dataclass
class LiveConsole:
    url: str
    classroom: Classroom

    def invite(self, email: str) -> str:
        """A set-password link, as `sislink users invite EMAIL` prints it."""
        with self.classroom.transaction() as session:
            _, token = accounts.invite(session, Actor.system(), email)
        return f"{self.url}/set-password?token={token}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# Module scope, not session: while Playwright's sync API is open it keeps an asyncio loop
# marked as running in this thread, and every later test that calls asyncio.run would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium; .ci/run does)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        watch_every_context(launched)
        yield launched
        launched.close()


@dataclass
class AxeLedger:
    """What the pages of one test's browser contexts said about themselves (AUTO_CHECK)."""

    checked: list[str]
    left_unchecked: list[str]
    violations: list[str]
    contexts: list[BrowserContext]

    def hear(self, message: dict[str, object], width: int) -> None:
        where, state = f"{message.get('where')} at {width} px", message.get("state")
        if state == "started":
            self.left_unchecked.append(where)
            return
        if where in self.left_unchecked:
            self.left_unchecked.remove(where)
        if state == "checked":
            self.checked.append(where)
            found = message.get("violations") or []
            if found:
                self.violations.append(f"{where}: {describe(found)}")  # type: ignore[arg-type]
        else:
            self.violations.append(f"{where}: axe did not run ({message.get('error')})")

    def settle(self) -> None:
        """Wait for the checks still running in open pages, so their answers are heard."""
        for context in self.contexts:
            for open_page in context.pages:
                # Closed or navigating: its own next load checks it.
                with contextlib.suppress(Exception):
                    open_page.evaluate("async () => { await (window.__sislinkAxe || null); }")


_ledger = AxeLedger([], [], [], [])


def watch_every_context(browser: Browser) -> None:
    """Every context the tests make from this browser (browser.new_context, or the page
    fixture's) runs axe on each console page it loads, reporting to the current test's ledger."""
    script = auto_check_script()
    if script is None:
        return
    make_context = browser.new_context

    def new_context(**options: object) -> BrowserContext:
        context = make_context(**options)  # type: ignore[arg-type]
        context.add_init_script(script=script)
        width = int((options.get("viewport") or {}).get("width", 1280))  # type: ignore[attr-defined]
        context.expose_binding(
            REPORT_BINDING, lambda _source, message: _ledger.hear(message, width)
        )
        _ledger.contexts.append(context)
        close = context.close

        def settle_then_close(**close_options: object) -> None:
            _ledger.settle()
            close(**close_options)  # type: ignore[arg-type]

        context.close = settle_then_close  # type: ignore[method-assign]
        return context

    browser.new_context = new_context  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def axe_on_every_page() -> Iterator[AxeLedger]:
    """Fails the test when any console page it opened had a critical or serious axe violation.
    Set SISLINK_AXE_LOG to a file to append the pages checked (to list what the tests cover)."""
    _ledger.checked.clear()
    _ledger.left_unchecked.clear()
    _ledger.violations.clear()
    _ledger.contexts.clear()
    yield _ledger
    _ledger.settle()
    log = os.environ.get("SISLINK_AXE_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as lines:
            for where in _ledger.checked:
                lines.write(f"checked {where}\n")
            for where in _ledger.left_unchecked:
                lines.write(f"left-before-checked {where}\n")
    assert not _ledger.violations, "axe on the pages opened: " + " | ".join(_ledger.violations)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    opened = context.new_page()
    yield opened
    context.close()


@pytest.fixture(scope="module")
def sis() -> Iterator[RunningProvider]:
    with running_provider(profile="generic-1.2", students=40) as running:
        yield running


@pytest.fixture
def live_console(tmp_path: Path) -> Iterator[LiveConsole]:
    classroom = open_classroom(
        f"sqlite:///{tmp_path / 'console.db'}", secret_box=SecretBox.generate()
    )
    with classroom.transaction() as session:
        admin = people.create_person(
            session, Actor.system(), name="Ada Admin", email=ADMIN_EMAIL, roles=[Role.ADMIN]
        )
        accounts.set_password(session, Actor.system(), admin.id, PASSWORD)
    app = create_app(classroom, allow_private_sis=True)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="console", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the console did not start")
        time.sleep(0.02)
    try:
        yield LiveConsole(f"http://127.0.0.1:{port}", classroom)
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        classroom.close()


@pytest.fixture
def shoot() -> object:
    """shoot(page, name): a full-page screenshot into $SISLINK_SCREENSHOTS, when it is set."""
    folder = os.environ.get(SCREENSHOTS_VARIABLE)

    def take(page: Page, name: str) -> None:
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)

    return take
