"""The console's charts after real imports and exports against the built-in SIS: Activity's
exports and imports per day, a class's export history and what each roster import changed, each
an SVG whose description and table say the numbers the stored reports hold; an empty district
gets a sentence instead of an empty chart."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

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
from sislink.classroom.models import Class, Job, MarkExportReport, Role
from sislink.classroom.services import classes, people
from sislink.classroom.services import coursework as coursework_service
from sislink.classroom.services.access import teaches
from sislink.oneroster.provider.server import RunningProvider, running_provider


@pytest.fixture(scope="module")
def sis() -> Iterator[RunningProvider]:
    with running_provider(profile="generic-1.2", students=30) as running:
        yield running


@dataclass
class World:
    served: Console
    admin: PageClient
    teacher: PageClient
    class_id: int


def figure(page: str, chart_id: str) -> str:
    """The chart's <figure> (its SVG, legend and table)."""
    found = re.search(rf'<figure class="chart" id="{chart_id}">(.*?)</figure>', page, re.S)
    assert found, f"no chart {chart_id} on the page"
    return found.group(1)


def description(chart: str) -> str:
    found = re.search(r"<desc [^>]*>(.*?)</desc>", chart, re.S)
    assert found
    return html.unescape(found.group(1))


def table_rows(chart: str) -> dict[str, list[str]]:
    """The "Show the numbers" table: {row heading (link text): [cells...]}."""
    body = chart.split("<tbody>")[1].split("</tbody>")[0]
    rows: dict[str, list[str]] = {}
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        heading = re.sub(r"<[^>]+>", "", re.findall(r"<th[^>]*>(.*?)</th>", row, re.S)[0])
        rows[html.unescape(heading)] = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    return rows


def item_count(report: MarkExportReport, outcome: str) -> int:
    counts = report.summary["counts"]
    return sum(int(counts.get(kind, {}).get(outcome, 0)) for kind in ("lineItem", "result"))


def needing_attention(report: MarkExportReport) -> int:
    """Items skipped for a reason someone must act on (not drafts left out by choice)."""
    return int((report.summary.get("attention") or {}).get("count", 0))


def day_words(day: date) -> str:
    return f"{day:%b} {day.day}, {day.year}"


@pytest.fixture
def world(sis: RunningProvider, tmp_path: Path) -> Iterator[World]:
    """Connected and imported twice; a teacher's class exported twice (the second export after
    a mark changed), with a coursework the export skips (no due date)."""
    with console(tmp_path) as served:
        admin = served.client()
        admin.sign_in(ADMIN_EMAIL)
        connect_and_authorise(admin, sis)
        import_roster(served, admin)
        teacher = invite_and_sign_in(served, sis.teacher_email)
        class_id = int(re.findall(r'href="/classes/(\d+)"', teacher.get("/classes").text)[0])
        with served.classroom.transaction() as session:
            me = people.find_person_by_email(session, sis.teacher_email)
            assert me is not None
            # No due date: the export skips it (and its marks), for the teacher to act on.
            coursework_service.create_coursework(
                session, Actor.of(me), class_id, title="Quiz", max_points=10, publish=True
            )
        form = teacher.get(f"/classes/{class_id}/coursework/new")
        category = re.findall(r'<option value="(\d+)" >Homework</option>', form.text)[0]
        made = teacher.post(
            f"/classes/{class_id}/coursework",
            {
                "title": "Essay",
                "points": "20",
                "due": date.today().isoformat(),
                "category_id": category,
                "publish": "on",
                "export_to_sis": "on",
            },
        )
        assert "Coursework added: Essay." in made.text
        cells = re.findall(
            r'<input name="(m\d+_\d+)"', teacher.get(f"/classes/{class_id}/gradebook").text
        )
        for marks in ({cells[0]: "18", cells[1]: "12", cells[2]: "9"}, {cells[0]: "19"}):
            teacher.post(f"/classes/{class_id}/gradebook", marks)
            teacher.post(f"/classes/{class_id}/return", {})
            teacher.post(f"/classes/{class_id}/export", {})
            served.background.wait_idle()
        import_roster(served, admin)
        yield World(served, admin, teacher, class_id)


def test_activity_charts_say_what_the_reports_hold(world: World) -> None:
    with world.served.classroom.session() as session:
        reports = session.scalars(
            select(MarkExportReport).where(MarkExportReport.dry_run.is_(False))
        ).all()
        imports = session.scalars(select(Job).where(Job.kind == "roster_import")).all()
        exported = {
            "writes": sum(r.writes for r in reports),
            "skipped": sum(needing_attention(r) for r in reports),
            "failed": sum(item_count(r, "failed") for r in reports),
        }
        changed = {
            change: sum(
                int(numbers[change]) for job in imports for numbers in job.report["counts"].values()
            )
            for change in ("created", "updated", "deactivated")
        }
    assert len(reports) == 2 and exported["writes"] > 0 and exported["skipped"] > 0
    assert len(imports) == 2 and changed["created"] > 0

    page = world.admin.get("/admin/activity").text
    today = day_words(datetime.now(UTC).date())

    exports = figure(page, "chart-exports-by-day")
    assert 'role="img"' in page.split('id="chart-exports-by-day"')[1][:400]
    words = description(exports)
    assert (
        f"2 exports; {exported['writes']} writes, {exported['skipped']} skipped (needs attention), "
        f"{exported['failed']} failed in all" in words
    ), words
    assert f"The most on {today}" in words
    rows = table_rows(exports)
    assert list(rows) == [today]  # empty days are left out of the table
    assert rows[today] == [
        "2 exports",
        str(exported["writes"]),
        str(exported["skipped"]),
        str(exported["failed"]),
        "0",  # no export failed as a whole
    ]
    assert 'class="chart-failed-mark"' not in exports
    # Each day's bar, drawn: one <g> per day of the 30, today's with its stacked parts.
    assert exports.count('<g class="chart-bar">') == 30
    assert f"<title>{today}: {exported['writes']} writes" in exports

    changes = figure(page, "chart-imports-by-day")
    words = description(changes)
    assert (
        f"2 imports; {changed['created']} created, {changed['updated']} updated, "
        f"{changed['deactivated']} deactivated in all" in words
    ), words
    assert table_rows(changes)[today] == [
        "2 imports",
        str(changed["created"]),
        str(changed["updated"]),
        str(changed["deactivated"]),
    ]
    assert "nothing-in-window" not in page


def test_the_class_page_charts_each_export_with_a_link_to_its_report(world: World) -> None:
    with world.served.classroom.session() as session:
        reports = session.scalars(
            select(MarkExportReport)
            .where(MarkExportReport.class_id == world.class_id)
            .order_by(MarkExportReport.id)
        ).all()
        expected = [
            (r.id, r.outcome, r.writes, needing_attention(r), item_count(r, "failed"))
            for r in reports
        ]
    assert len(expected) == 2
    page = world.teacher.get(f"/classes/{world.class_id}").text
    chart = figure(page, "chart-class-exports")
    assert "The class&#39;s last 2 exports" in chart or "The class's last 2 exports" in chart
    for report_id, outcome, writes, skipped, failed in expected:
        link = f'<a href="/classes/{world.class_id}/reports/{report_id}">'
        row = chart.split(link)[1].split("</tr>")[0]
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        assert cells == [outcome.replace("_", " "), str(writes), str(skipped), str(failed)]
    latest = expected[-1]
    assert (
        f"{latest[2]} writes, {latest[3]} skipped (needs attention), {latest[4]} failed."
        in description(chart)
    )
    # The second export sent only the changed mark: fewer writes than the first.
    assert expected[1][2] < expected[0][2]


def test_the_roster_page_shows_what_each_import_changed(world: World) -> None:
    with world.served.classroom.session() as session:
        imports = session.scalars(
            select(Job).where(Job.kind == "roster_import").order_by(Job.id)
        ).all()
        expected = {job.id: job.report["counts"] for job in imports}
    page = world.admin.get("/admin/roster").text
    chart = figure(page, "chart-import-changes")
    rows = {heading.split(",")[0]: cells for heading, cells in table_rows(chart).items()}
    for job_id, counts in expected.items():
        totals = [
            str(sum(int(n[change]) for n in counts.values()))
            for change in ("created", "updated", "deactivated")
        ]
        assert rows[f"Import {job_id}"][1:] == totals
        assert f'<a href="/admin/roster/jobs/{job_id}">Import {job_id}' in chart
        # The compact table: each changed entity in words.
        line = page.split(f'id="import-changes-{job_id}"')[1].split("</tr>")[0]
        for entity, numbers in counts.items():
            said = [
                f"{numbers[c]} {c}" for c in ("created", "updated", "deactivated") if numbers[c]
            ]
            if said:
                assert f"{entity.replace('_', ' ').capitalize()}: {', '.join(said)}" in line
            else:
                assert f"{entity.replace('_', ' ').capitalize()}:" not in line
    first = min(expected)
    assert int(expected[first]["students"]["created"]) == 30


def test_an_empty_district_gets_sentences_not_empty_charts(tmp_path: Path) -> None:
    with console(tmp_path) as served:
        admin = served.client()
        admin.sign_in(ADMIN_EMAIL)
        activity = admin.get("/admin/activity").text
        assert "No mark export and no roster import in the last 30 days" in activity
        assert "chart-svg" not in activity
        roster = admin.get("/admin/roster").text
        assert "No import has been applied yet, so nothing has changed." in roster
        assert "chart-svg" not in roster
        with served.classroom.transaction() as session:
            teacher = people.create_person(
                session, Actor.system(), name="T", email="t@school.example", roles=[Role.TEACHER]
            )
            class_id = classes.create_class(
                session, Actor.system(), title="Art", primary_teacher_id=teacher.id
            ).id
        class_page = admin.get(f"/classes/{class_id}").text
        assert "This class has not been exported yet." in class_page
        assert "chart-svg" not in class_page


def test_a_teacher_sees_no_chart_of_a_class_they_do_not_teach_nor_the_admin_charts(
    world: World, sis: RunningProvider
) -> None:
    """The class chart is built only after the class page's check; Activity and Roster are an
    administrator's pages."""
    with world.served.classroom.transaction() as session:
        me = people.find_person_by_email(session, sis.teacher_email)
        assert me is not None
        other = next(
            class_id
            for class_id in session.scalars(select(Class.id).order_by(Class.id))
            if not teaches(session, me.id, class_id)
        )
        # Something to chart in that class, so a leak would show.
        session.add(
            MarkExportReport(
                class_id=other,
                dry_run=False,
                outcome="succeeded",
                writes=7,
                started_at=datetime.now(UTC),
                finished_at=datetime.now(UTC),
                summary={"outcome": "succeeded", "counts": {}},
                items=[],
            )
        )
    refused = world.teacher.get(f"/classes/{other}")
    assert refused.status_code == 403
    assert "chart-class-exports" not in refused.text
    assert world.admin.get(f"/classes/{other}").status_code == 200
    assert "chart-class-exports" in world.admin.get(f"/classes/{other}").text
    for admin_page in ("/admin/activity", "/admin/roster"):
        page = world.teacher.get(admin_page)
        assert page.status_code == 403, admin_page
        assert '<figure class="chart"' not in page.text


def test_a_day_when_every_export_failed_shows_on_the_charts(tmp_path: Path) -> None:
    """The SIS went down after the import: each of the teacher's classes gets a failed (or "not
    tried") export with no item, so no item failed. Activity still says those exports failed, in
    its words, a mark on the day and the table's column; the class chart marks the failed export
    and says that nothing was sent."""
    with console(tmp_path) as served:
        admin = served.client()
        admin.sign_in(ADMIN_EMAIL)
        with running_provider(profile="generic-1.2", students=12) as going_down:
            connect_and_authorise(admin, going_down)
            import_roster(served, admin)
            teacher_email = going_down.teacher_email
        # The SIS is stopped now: its port is closed.
        teacher = invite_and_sign_in(served, teacher_email)
        with served.classroom.transaction() as session:
            me = people.find_person_by_email(session, teacher_email)
            assert me is not None
            class_ids = [
                class_id
                for class_id in session.scalars(select(Class.id).order_by(Class.id))
                if teaches(session, me.id, class_id)
            ]
            for class_id in class_ids:
                coursework_service.create_coursework(
                    session,
                    Actor.of(me),
                    class_id,
                    title="Essay",
                    max_points=10,
                    due_date=datetime.now(UTC),
                    publish=True,
                )
        teacher.post("/classes/export-all", {})
        served.background.wait_idle()
        with served.classroom.session() as session:
            reports = session.scalars(
                select(MarkExportReport).where(MarkExportReport.dry_run.is_(False))
            ).all()
            outcomes = sorted({r.outcome for r in reports})
            failed_items = sum(item_count(r, "failed") for r in reports)
            class_id, report_id = reports[0].class_id, reports[0].id
        assert class_ids and len(reports) == len(class_ids)
        assert set(outcomes) <= {"failed", "refused"}, outcomes
        assert failed_items == 0 and all(r.writes == 0 for r in reports)
        n = len(reports)

        page = admin.get("/admin/activity").text
        today = day_words(datetime.now(UTC).date())
        exports = figure(page, "chart-exports-by-day")
        words = description(exports)
        assert f"{n} exports; 0 writes, 0 skipped (needs attention), 0 failed in all" in words
        assert f"Exports that failed or were refused: {n}; the most on {today} ({n})." in words
        heading = re.findall(r'<th scope="col"[^>]*>(.*?)</th>', exports)
        assert heading[-1] == "Failed exports", heading
        assert table_rows(exports)[today] == [f"{n} exports", "0", "0", "0", str(n)]
        # The day has no bar, but a mark with its tooltip, and the legend counts it.
        tooltip = f"{today}: 0 writes, 0 skipped (needs attention), 0 failed; {n} exports failed"
        assert f"<title>{tooltip} or were refused</title>" in exports
        assert exports.count('class="chart-failed-mark"') == 1
        assert f"Failed exports: {n}</li>" in exports
        spanish = admin.get("/admin/activity", headers={"Accept-Language": "es"}).text
        assert f"Exportaciones fallidas: {n}</li>" in spanish
        assert f"{n} exportaciones fallaron o fueron rechazadas</title>" in spanish

        chart = figure(teacher.get(f"/classes/{class_id}").text, "chart-class-exports")
        assert 'class="chart-failed-mark"' in chart
        assert re.search(r"0 failed; (failed|refused): nothing was sent</title>", chart)
        row = chart.split(f'<a href="/classes/{class_id}/reports/{report_id}">')[1]
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row.split("</tr>")[0], re.S)
        assert cells[0] in ("failed", "refused") and cells[1:] == ["0", "0", "0"], cells
        assert "1 of them failed or was refused." in description(chart)
