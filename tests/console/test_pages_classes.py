"""The teacher's pages against the built-in SIS over HTTP: (re)link a class, coursework (checked
field by field, typed text escaped), the gradebook grid (a bad cell answered, the rest saved),
return, export with a job and the Troubleshoot report; another teacher's class is refused by URL;
with the permission off, export is hidden and refused."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

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
from sislink.classroom.models import (
    ClassLink,
    EnrolmentRole,
    Job,
    JobStatus,
    Mark,
    MarkExportReport,
    MarkState,
    MissingMarkExport,
    Role,
)
from sislink.classroom.services import classes, jobs, people
from sislink.classroom.services import coursework as coursework_service
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.sync import class_link


@pytest.fixture(scope="module")
def sis() -> Iterator[RunningProvider]:
    with running_provider(profile="generic-1.2", students=40) as running:
        yield running


@dataclass
class School:
    served: Console
    admin: PageClient
    teacher: PageClient
    class_id: int


@pytest.fixture
def school(sis: RunningProvider, tmp_path: Path) -> Iterator[School]:
    """Connected, roster imported, the SIS's teacher signed in through their invitation."""
    with console(tmp_path) as served:
        admin = served.client()
        admin.sign_in(ADMIN_EMAIL)
        connect_and_authorise(admin, sis)
        import_roster(served, admin)
        teacher = invite_and_sign_in(served, sis.teacher_email)
        listed = teacher.get("/classes")
        class_id = int(re.findall(r'href="/classes/(\d+)"', listed.text)[0])
        yield School(served, admin, teacher, class_id)


def link_first_sis_class(school: School) -> str:
    """Unlink the class (the roster import linked it to its SIS class), then link it again."""
    unlinked = school.teacher.post(f"/classes/{school.class_id}/unlink")
    assert "Unlinked" in unlinked.text and "not linked" in unlinked.text
    page = school.teacher.get(f"/classes/{school.class_id}/link")
    sis_class = re.findall(r'name="sis_class" value="([^"]+)"', page.text)[0]
    linked = school.teacher.post(f"/classes/{school.class_id}/link", {"sis_class": sis_class})
    assert "Linked to SIS class" in linked.text, linked.text
    return sis_class


def add_quiz_without_a_due_date(served: Console, teacher_email: str, cid: int) -> None:
    """The form refuses it in a linked class; the command line or the API may still add it
    (as may a class linked after its coursework was made), and the export skips it."""
    with served.classroom.transaction() as session:
        me = people.find_person_by_email(session, teacher_email)
        assert me is not None
        coursework_service.create_coursework(
            session, Actor.of(me), cid, title="Quiz", max_points=10, publish=True
        )


def coursework_ids(page: str) -> list[int]:
    return [int(x) for x in re.findall(r"/coursework/(\d+)/edit", page)]


def grid_cells(page: str) -> list[str]:
    return re.findall(r'<input name="(m\d+_\d+)"', page)


def test_a_teacher_links_adds_coursework_marks_returns_exports_and_reads_the_report(
    school: School, sis: RunningProvider
) -> None:
    teacher, cid = school.teacher, school.class_id
    sis_class = link_first_sis_class(school)
    assert f"<code>{sis_class}</code>" in teacher.get(f"/classes/{cid}").text

    form = teacher.get(f"/classes/{cid}/coursework/new")
    categories = dict(
        (name, value)
        for value, name in re.findall(r'<option value="(\d+)" >([^<]+)</option>', form.text)
    )
    assert {"Homework", "Tests"} <= set(categories)
    due = date.today().isoformat()  # inside the seeded school year
    periods = re.findall(r'<option value="(\d+)" >(Quarter[^<]*)</option>', form.text)
    assert len(periods) == 4
    made = teacher.post(
        f"/classes/{cid}/coursework",
        {
            "title": "Essay",
            "points": "20",
            "due": due,
            "category_id": categories["Homework"],
            "publish": "on",
            "export_to_sis": "on",
        },
    )
    assert "Coursework added: Essay." in made.text
    refused = teacher.post(
        f"/classes/{cid}/coursework",
        {"title": "Quiz", "points": "10", "publish": "on", "export_to_sis": "on"},
    )
    assert refused.status_code == 400 and 'id="due-error"' in refused.text
    add_quiz_without_a_due_date(school.served, sis.teacher_email, cid)
    grid = teacher.get(f"/classes/{cid}/gradebook")
    cells = grid_cells(grid.text)
    assert len(cells) == 2 * len(re.findall(r'<th class="student"', grid.text)[1:])
    essay = coursework_ids(teacher.get(f"/classes/{cid}").text)
    essay_cells = [c for c in cells if c.startswith(f"m{min(essay)}_")]
    saved = teacher.post(
        f"/classes/{cid}/gradebook",
        {essay_cells[0]: "18", essay_cells[1]: "EX", essay_cells[2]: "M", essay_cells[3]: "25"},
    )
    assert "Saved 4 marks as drafts: students do not see them" in saved.text
    returned = teacher.post(f"/classes/{cid}/return", {})
    assert "Returned 4 marks" in returned.text

    report = teacher.post(f"/classes/{cid}/export", {})
    school.served.background.wait_idle()
    report = teacher.get(str(report.url))
    assert report.url.path.startswith(f"/classes/{cid}/reports/"), report.text
    assert "Troubleshoot mark export" in report.text
    # The Quiz was skipped, so the export is not "succeeded": it needs attention, with the
    # count and the reason, wherever its status is shown.
    no_due = "Quiz: It has no due date, and the SIS needs one: give it a due date."
    assert (
        'id="report-outcome">needs attention</span> <span class="attention-count">1 item skipped'
        in report.text
    )
    assert no_due in report.text
    # The Quiz has no due date: the report says so, in words, before anything else.
    first_row = report.text.split('<tr class="item ')[1]
    assert first_row.startswith("skipped") and "It has no due date" in first_row
    assert report.text.count('<tr class="item exported"') == 5  # the Essay and 4 marks
    for page in (
        teacher.get(f"/classes/{cid}"),
        teacher.get("/classes"),
        school.admin.get("/admin/activity"),
    ):
        assert 'class="badge needs_attention">needs attention' in page.text, page.url
        assert "1 item skipped" in page.text and no_due in page.text, page.url
        assert 'class="badge succeeded"' not in page.text


def test_coursework_is_checked_field_by_field_and_what_was_typed_is_escaped(
    school: School,
) -> None:
    teacher, cid = school.teacher, school.class_id
    teacher.get(f"/classes/{cid}/coursework/new")
    bad = teacher.post(
        f"/classes/{cid}/coursework",
        {"title": "<script>alert(1)</script>", "points": "ten", "due": "next week"},
    )
    assert bad.status_code == 400
    assert 'id="points-error"' in bad.text and "positive number" in bad.text
    assert 'id="due-error"' in bad.text and "not a date" in bad.text
    assert "<script>alert(1)</script>" not in bad.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in bad.text  # kept, escaped
    made = teacher.post(
        f"/classes/{cid}/coursework",
        {"title": "<script>alert(1)</script>", "points": "10", "publish": "on"},
    )
    assert "<script>alert(1)</script>" not in made.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in made.text
    (work,) = coursework_ids(made.text)
    edit = teacher.get(f"/classes/{cid}/coursework/{work}/edit")
    assert 'name="export_to_sis" id="export_to_sis" >' in edit.text  # opted out when made
    to_the_sis = {"title": "Lab report", "points": "12", "publish": "on", "export_to_sis": "on"}
    # Sent to the SIS from now on, it needs what the SIS needs: refused until it has it.
    refused = teacher.post(f"/classes/{cid}/coursework/{work}", to_the_sis)
    assert refused.status_code == 400 and 'id="due-error"' in refused.text
    homework = re.findall(r'<option value="(\d+)" >Homework</option>', edit.text)[0]
    teacher.post(
        f"/classes/{cid}/coursework/{work}",
        {**to_the_sis, "due": date.today().isoformat(), "category_id": homework},
    )
    page = teacher.get(f"/classes/{cid}")
    assert "Lab report" in page.text and "<td>12</td>" in page.text
    deleted = teacher.post(f"/classes/{cid}/coursework/{work}/delete")
    assert "The next export removes it from the SIS" in deleted.text
    assert coursework_ids(deleted.text) == []


def test_a_cell_that_is_not_a_mark_is_answered_next_to_it_and_the_others_are_saved(
    school: School,
) -> None:
    teacher, cid = school.teacher, school.class_id
    teacher.get(f"/classes/{cid}/coursework/new")
    teacher.post(f"/classes/{cid}/coursework", {"title": "Test 1", "points": "10"})
    cells = grid_cells(teacher.get(f"/classes/{cid}/gradebook").text)
    answer = teacher.post(
        f"/classes/{cid}/gradebook",
        {
            cells[0]: "9",
            cells[1]: "nine",
            cells[2]: "-1",
            cells[3]: "1e20",
            cells[4]: "\u0668",
            cells[5]: "21",
            cells[6]: "nan",
            cells[7]: "inf",
            cells[8]: "15",  # above the 10 points, within the class's extra-credit limit
        },
    )
    assert answer.status_code == 400
    assert "is not a number; type a number, EX (excused) or M (missing)" in answer.text
    assert "cannot be negative" in answer.text
    # The same rule as every other way of setting a mark (classroom/services/marks).
    assert "is in exponent notation" in answer.text
    assert "has digits other than 0-9" in answer.text
    assert "more than 2 times its 10 points" in answer.text
    assert 'value="nine"' in answer.text  # what was typed stays in its cell
    assert "&#39;nan&#39; is not a number" in answer.text
    assert "&#39;inf&#39; is not a number" in answer.text
    assert answer.text.count('aria-invalid="true"') == 7  # each refused cell, by itself
    # The page says exactly what was saved meanwhile, and in what state.
    assert 'id="saved-marks">Saved 2 marks as drafts: students do not see them' in answer.text
    with school.served.classroom.session() as session:
        saved = session.scalars(select(Mark).order_by(Mark.id)).all()
        assert [(m.score, m.state) for m in saved] == [
            (9.0, MarkState.DRAFT),
            (15.0, MarkState.DRAFT),
        ]
    # A returned mark changed stays returned: the save says the next export sends it.
    teacher.post(f"/classes/{cid}/return", {})
    changed = teacher.post(f"/classes/{cid}/gradebook", {cells[0]: "8", cells[1]: "EX"})
    assert (
        "Saved 1 mark as draft: students do not see it and the export does not send it until "
        "returned. Saved 1 mark already returned to students: the next export sends it."
    ) in changed.text.replace("&#39;", "'"), changed.text
    cleared = teacher.post(f"/classes/{cid}/gradebook", {cells[1]: ""})
    assert "Cleared 1 mark." in cleared.text


def test_another_teachers_class_is_refused_by_url(school: School) -> None:
    served, cid = school.served, school.class_id
    served.person_with_password("other@school.example", Role.TEACHER, "Other Teacher")
    other = served.client()
    other.sign_in("other@school.example")
    assert f'href="/classes/{cid}"' not in other.get("/classes").text
    for url in (
        f"/classes/{cid}",
        f"/classes/{cid}/gradebook",
        f"/classes/{cid}/link",
        f"/classes/{cid}/coursework/new",
    ):
        assert other.get(url).status_code == 403, url
    for url in (
        f"/classes/{cid}/export",
        f"/classes/{cid}/gradebook",
        f"/classes/{cid}/coursework",
    ):
        assert other.post(url, {"title": "x"}).status_code == 403, url
    assert other.get("/classes/999999").status_code == 404
    with served.classroom.session() as session:
        assert (
            session.scalar(select(func.count()).select_from(Job).where(Job.kind == "mark_export"))
            == 0
        )


def test_with_the_permission_off_export_is_hidden_and_refused(school: School) -> None:
    teacher, cid = school.teacher, school.class_id
    link_first_sis_class(school)
    assert 'id="export-marks"' in teacher.get(f"/classes/{cid}").text
    school.admin.post("/admin/sis/permission", {})
    page = teacher.get(f"/classes/{cid}")
    assert 'id="export-marks"' not in page.text
    assert "Mark export is switched off for teachers" in page.text
    assert 'id="permission-off"' in teacher.get("/classes").text
    refused = teacher.post(f"/classes/{cid}/export", {})
    assert refused.status_code == 403 and "switched off" in refused.text
    with school.served.classroom.session() as session:
        assert (
            session.scalar(select(func.count()).select_from(Job).where(Job.kind == "mark_export"))
            == 0
        )


def test_the_primary_teacher_chooses_how_missing_and_draft_marks_are_exported(
    school: School,
) -> None:
    teacher, cid, served = school.teacher, school.class_id, school.served
    page = teacher.get(f"/classes/{cid}")
    assert 'id="save-export-choices"' in page.text
    assert 'value="zero" id="missing-as-zero" checked' in page.text
    assert 'id="export_drafts" >' in page.text  # not ticked: only returned marks go

    saved = teacher.post(
        f"/classes/{cid}/export-settings", {"missing_as": "not_submitted", "export_drafts": "on"}
    )
    assert saved.status_code == 200 and "Export choices saved" in saved.text
    assert 'value="not_submitted" id="missing-as-not-submitted" checked' in saved.text
    assert 'id="export_drafts" checked' in saved.text
    with served.classroom.session() as session:
        row = class_link.export_settings(session, cid)
        assert (row.missing_as, row.export_drafts) == (MissingMarkExport.NOT_SUBMITTED, True)

    unticked = teacher.post(f"/classes/{cid}/export-settings", {"missing_as": "zero"})
    assert 'value="zero" id="missing-as-zero" checked' in unticked.text
    assert 'id="export_drafts" >' in unticked.text
    bad = teacher.post(f"/classes/{cid}/export-settings", {"missing_as": "blank"})
    assert bad.status_code == 409 and "not-submitted" in bad.text
    forged = teacher.post(f"/classes/{cid}/export-settings", {"export_drafts": "on"}, csrf=False)
    assert forged.status_code == 403
    with served.classroom.session() as session:
        row = class_link.export_settings(session, cid)
        assert (row.missing_as, row.export_drafts) == (MissingMarkExport.ZERO, False)


def test_a_co_teacher_sees_the_export_choices_but_cannot_change_them(school: School) -> None:
    served, cid = school.served, school.class_id
    co_id = served.person_with_password("co@school.example", Role.TEACHER, "Co Teacher")
    with served.classroom.transaction() as session:
        classes.enrol(session, Actor.system(), cid, co_id, EnrolmentRole.TEACHER)
    co = served.client()
    co.sign_in("co@school.example")
    page = co.get(f"/classes/{cid}")
    assert page.status_code == 200
    assert 'id="save-export-choices"' not in page.text
    assert 'id="export-choices-text"' in page.text and "a score of 0" in page.text
    refused = co.post(f"/classes/{cid}/export-settings", {"export_drafts": "on"})
    assert refused.status_code == 403 and "Only the primary teacher" in refused.text
    with served.classroom.session() as session:
        assert not class_link.export_settings(session, cid).export_drafts


def test_an_export_the_sis_cannot_take_shows_failed_with_the_reason_on_both_pages(
    tmp_path: Path,
) -> None:
    # A SIS of its own: this test deletes a class in it.
    with (
        running_provider(profile="generic-1.2", students=40) as own_sis,
        console(tmp_path) as served,
    ):
        admin = served.client()
        admin.sign_in(ADMIN_EMAIL)
        connect_and_authorise(admin, own_sis)
        import_roster(served, admin)
        teacher = invite_and_sign_in(served, own_sis.teacher_email)
        cid = int(re.findall(r'href="/classes/(\d+)"', teacher.get("/classes").text)[0])
        add_quiz_without_a_due_date(served, own_sis.teacher_email, cid)
        with served.classroom.session() as session:
            link = session.scalars(select(ClassLink).where(ClassLink.class_id == cid)).one()
            sis_class_id = link.sis_class_sourced_id
        assert own_sis.store.delete("class", sis_class_id)  # deleted in the SIS meanwhile

        teacher.post(f"/classes/{cid}/export", {})
        served.background.wait_idle()
        with served.classroom.session() as session:
            report_id = session.scalars(
                select(MarkExportReport.id).where(MarkExportReport.class_id == cid)
            ).one()
        report = teacher.get(f"/classes/{cid}/reports/{report_id}")
        activity = admin.get("/admin/activity")
    reason = f"The SIS does not know this class's SIS class ({sis_class_id}) any more"
    assert 'id="report-outcome">failed' in report.text
    assert reason in report.text.replace("&#39;", "'")
    assert 'class="badge failed"' in activity.text
    assert reason in activity.text.replace("&#39;", "'")
    # Once, with its report: not again among the export jobs that could not run at all.
    assert "Export jobs that could not run" not in activity.text


def test_the_class_page_shows_the_export_of_every_class_while_it_exports_this_class(
    school: School,
) -> None:
    teacher, cid = school.teacher, school.class_id
    class_lock = jobs.lock_key_for(class_id=cid)
    with school.served.classroom.transaction() as session:
        every = jobs.queue_job(session, Actor.system(), "mark_export_all", lock_key="every:1")
        jobs.start_job(session, every.id)
        jobs.take_lock(session, every.id, class_lock)  # what `--all` does for each class
    page = teacher.get(f"/classes/{cid}")
    assert 'id="export-running-for-every-class"' in page.text
    assert f"(job {every.id}) is exporting this class now" in page.text
    assert 'id="export-marks"' not in page.text
    with school.served.classroom.transaction() as session:
        jobs.release_lock(session, every.id, class_lock)  # it moved on to the next class
    assert 'id="export-marks"' in teacher.get(f"/classes/{cid}").text


def test_the_live_export_page_says_an_export_that_left_items_out_needs_attention(
    school: School,
) -> None:
    teacher, cid = school.teacher, school.class_id
    with school.served.classroom.transaction() as session:
        job = jobs.queue_job(
            session, Actor.system(), "mark_export", class_id=cid, lock_key=f"page-test:{cid}"
        )
        jobs.start_job(session, job.id)
        refused = "not accepted by the SIS: Essay: the SIS has no category c-9"
        jobs.finish_job(
            session,
            job.id,
            JobStatus.NEEDS_ATTENTION,
            {"writes": 3, "attention": {"count": 2, "reasons": [refused]}},
        )
        job_id = job.id
    page = teacher.get(f"/classes/{cid}/export/{job_id}")
    ended = re.search(r'id="export-ended">([^<]*)<', page.text)
    assert ended is not None and "needs attention" in ended.group(1), page.text
    assert "succeeded" not in ended.group(1)
    assert "2 items not exported" in page.text and refused in page.text
