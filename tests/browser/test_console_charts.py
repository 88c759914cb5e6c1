"""The charts in a real browser, at 1280 px and a phone's 390 px: Activity's exports and imports
per day, a class's export history and what each roster import changed. Each chart is an image
with a name, its numbers open under "Show the numbers", no page scrolls sideways as a whole, and
axe-core finds no critical or serious violation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Browser, Page, expect

from browser.accessibility import assert_accessible
from browser.conftest import ADMIN_EMAIL, PASSWORD, LiveConsole
from sislink.classroom import Actor
from sislink.classroom.models import Job, JobStatus, MarkExportReport, Role
from sislink.classroom.services import classes, people

Shoot = Callable[[Page, str], None]
WIDTHS = [1280, 390]


def seed(live: LiveConsole) -> int:
    """A class with exports over two weeks (some skipped or failed items), then one that failed
    as a whole with no item (the SIS was down), and three applied roster imports, kept as the
    export and the import keep them."""
    system = Actor.system()
    now = datetime.now(UTC)
    with live.classroom.transaction() as session:
        teacher = people.create_person(
            session, system, name="Tess Teacher", email="tess@school.example", roles=[Role.TEACHER]
        )
        class_id = classes.create_class(
            session, system, title="Biology 10", primary_teacher_id=teacher.id
        ).id
        for n in range(12):
            at = now - timedelta(days=13 - n, hours=n % 3)
            skipped, failed = (n % 4 == 1) * 3, (n % 5 == 2) * 2
            session.add(
                MarkExportReport(
                    class_id=class_id,
                    dry_run=False,
                    outcome="partial" if failed else "needs_attention" if skipped else "succeeded",
                    writes=4 + 3 * n,
                    started_at=at,
                    finished_at=at,
                    summary={
                        "attention": {"count": skipped, "reasons": ["Quiz: no due date"]}
                        if skipped
                        else None,
                        "counts": {
                            "lineItem": {"exported": 1, "skipped": skipped},
                            "result": {"exported": 3 + 3 * n, "failed": failed},
                        },
                    },
                    items=[],
                )
            )
        down = now - timedelta(hours=1)
        session.add(
            MarkExportReport(
                class_id=class_id,
                dry_run=False,
                outcome="failed",
                writes=0,
                started_at=down,
                finished_at=down,
                summary={"outcome": "failed", "failed": "The SIS did not answer.", "counts": {}},
                items=[],
            )
        )
        for n, (created, updated, deactivated) in enumerate(((40, 0, 0), (2, 5, 1), (0, 3, 4))):
            at = now - timedelta(days=20 - 7 * n)
            session.add(
                Job(
                    kind="roster_import",
                    status=JobStatus.SUCCEEDED,
                    created_at=at,
                    started_at=at,
                    finished_at=at,
                    report={
                        "status": "applied",
                        "mode": "full" if n == 0 else "delta",
                        "counts": {
                            "students": {
                                "created": created,
                                "updated": updated,
                                "deactivated": deactivated,
                            },
                            "enrolments": {"created": 2 * created, "updated": 0, "deactivated": 0},
                        },
                    },
                )
            )
    return class_id


def check(page: Page, chart_id: str) -> None:
    """The chart is an image with a name; its numbers open; nothing scrolls sideways; axe."""
    page.wait_for_load_state("load")
    chart = page.locator(f"#{chart_id}")
    expect(chart.get_by_role("img")).to_have_count(1)
    chart.locator("summary").click()
    expect(chart.locator("table")).to_be_visible()
    wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert wide <= 0, f"{page.url} scrolls {wide} px sideways"
    box = chart.locator("svg.chart-svg").bounding_box()
    assert box is not None and box["width"] <= page.viewport_size["width"]  # type: ignore[index]
    assert_accessible(page)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_charts_at_laptop_and_phone_width(
    browser: Browser, live_console: LiveConsole, shoot: Shoot, width: int
) -> None:
    class_id = seed(live_console)
    context = browser.new_context(viewport={"width": width, "height": 860})
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.goto(f"{live_console.url}/login")
    page.fill("#email", ADMIN_EMAIL)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")

    page.goto(f"{live_console.url}/admin/activity")
    expect(page.get_by_role("img", name="Mark exports per day")).to_be_visible()
    expect(page.get_by_role("img", name="Roster import changes per day")).to_be_visible()
    check(page, "chart-exports-by-day")
    check(page, "chart-imports-by-day")
    # The export that failed with no item: a mark on its day, counted in the table's column.
    expect(page.locator("#chart-exports-by-day path.chart-failed-mark")).to_have_count(1)
    expect(page.locator("#chart-exports-by-day tfoot td.num").last).to_have_text("1")
    shoot(page, f"admin-activity-charts-{width}")

    page.goto(f"{live_console.url}/classes/{class_id}")
    check(page, "chart-class-exports")
    expect(page.locator("#chart-class-exports tbody tr")).to_have_count(13)
    expect(page.locator("#chart-class-exports tfoot td.num")).to_have_text(["246", "9", "4"])
    failed_mark = page.locator("#chart-class-exports path.chart-failed-mark")
    expect(failed_mark).to_have_count(1)
    expect(failed_mark).to_be_visible()
    expect(page.locator("#chart-class-exports tbody tr").last).to_contain_text("failed")
    shoot(page, f"class-export-history-{width}")

    page.goto(f"{live_console.url}/admin/roster")
    check(page, "chart-import-changes")
    expect(page.locator("#import-changes table.import-changes")).to_contain_text(
        "Students: 2 created, 5 updated, 1 deactivated"
    )
    shoot(page, f"admin-roster-import-changes-{width}")
    context.close()
