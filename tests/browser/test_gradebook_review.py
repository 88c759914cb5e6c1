"""The gradebook at real size where a review found it wrong, in a real browser (Debian's
chromium) at 1280 and 390 px: a cell reached from the keyboard, going down the grid row by row,
is never hidden under the Save bar fixed to the bottom of the window (WCAG 2.4.11, focus not
obscured), nor under the fixed header row."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from browser.accessibility import assert_accessible
from browser.conftest import LiveConsole
from browser.test_gradebook_real_size import (
    COURSEWORK,
    STUDENTS,
    TEACHER,
    WIDTHS,
    box,
    cell,
    seed_class,
    sign_in,
)

FOCUSED_UNDER_BAR = """() => {
  const input = document.activeElement;
  const bar = document.getElementById("grid-bar").getBoundingClientRect();
  const head = document.querySelector("table.grid thead").getBoundingClientRect();
  const at = input.getBoundingClientRect();
  return {
    label: input.getAttribute("aria-label"),
    top: at.top, bottom: at.bottom, barTop: bar.top, headBottom: head.bottom,
    seen: document.elementFromPoint(at.left + at.width / 2, at.top + at.height / 2) === input,
  };
}"""


@pytest.mark.parametrize("width", WIDTHS)
def test_going_down_the_grid_by_keyboard_the_cell_is_never_under_the_save_bar(
    browser: Browser, live_console: LiveConsole, width: int
) -> None:
    class_id = seed_class(live_console)
    context = browser.new_context(viewport={"width": width, "height": 860})
    context.set_default_timeout(20_000)
    page = context.new_page()
    sign_in(page, live_console.url, TEACHER)
    page.goto(f"{live_console.url}/classes/{class_id}/gradebook")
    expect(page.locator("table.grid tbody tr")).to_have_count(STUDENTS)
    assert (
        box(page.locator("#grid-frame"))["y"] + box(page.locator("#grid-frame"))["height"]
        > (box(page.locator("#grid-bar"))["y"])
    ), "the Save bar does not cover the grid's frame here: nothing to check"
    cell(page, 0, 3).focus()
    for row in range(1, STUDENTS):
        page.keyboard.press("ArrowDown")
        found = page.evaluate(FOCUSED_UNDER_BAR)
        assert found["label"].startswith(f"Student {row:02d} "), found
        assert found["bottom"] <= found["barTop"] + 2, f"row {row} under the Save bar: {found}"
        assert found["top"] >= found["headBottom"] - 0.5, f"row {row} under the header: {found}"
        assert found["seen"], f"row {row} covered: {found}"
    for row in range(STUDENTS - 2, -1, -1):
        page.keyboard.press("Shift+Enter")
        found = page.evaluate(FOCUSED_UNDER_BAR)
        assert found["label"].startswith(f"Student {row:02d} "), found
        assert found["bottom"] <= found["barTop"] + 2, f"row {row} under the Save bar: {found}"
        assert found["seen"], f"row {row} covered: {found}"
    # Tab from a row's last cell to the next row's first: checked once the browser has scrolled
    # (a frame later).
    page.evaluate("window.scrollTo(0, 0)")
    cell(page, 0, COURSEWORK).focus()
    for row in range(1, 16):
        page.keyboard.press("Tab")
        page.evaluate(
            "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
        )
        found = page.evaluate(FOCUSED_UNDER_BAR)
        assert (
            found["label"] == f"Student {row:02d} with a longer family name, Assignment 01 on cells"
        )
        assert found["bottom"] <= found["barTop"] + 2, f"row {row} under the Save bar: {found}"
        page.keyboard.press("End")  # nothing moves: the caret goes to the end of the text
        cell(page, row, COURSEWORK).focus()
    assert_accessible(page)
    context.close()


def test_a_keyboard_user_saves_from_the_cell_without_tabbing_through_every_cell(
    browser: Browser, live_console: LiveConsole
) -> None:
    """Enter moves down, as in a sheet, so it no longer saves; with 1,400 cells before the Save
    button, a keyboard user saves with Ctrl+Enter (the hint says so)."""
    class_id = seed_class(live_console)
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(20_000)
    page = context.new_page()
    sign_in(page, live_console.url, TEACHER)
    page.goto(f"{live_console.url}/classes/{class_id}/gradebook")
    expect(page.locator("#save-key")).to_contain_text("Ctrl+Enter saves")
    cell(page, 4, 7).focus()
    cell(page, 4, 7).select_text()  # as Tab leaves it
    page.keyboard.type("19")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#flash")).to_contain_text("Saved 1 mark")
    expect(cell(page, 4, 7)).to_have_value("19")
    context.close()
