"""What the command line can do, the pages do too, and statuses say what happened: export every
class, cancel an export or an import, a held import confirmed after reading what it deactivates,
the gradebook downloaded and imported as a sheet; an export that failed tells the teacher that
nothing was lost, with Retry and the SIS's answer behind a toggle; a roster import that left
records out is 'needs attention' with the count, never a green 'succeeded'. No page shows a
`sislink` command."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

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
from sislink.classroom.models import Job, JobStatus, Mark, MarkExportReport
from sislink.classroom.services import accounts, jobs, people, time_zone
from sislink.classroom.services import coursework as coursework_service
from sislink.oneroster.provider.server import RunningProvider, running_provider

TEMPLATES = Path(__file__).resolve().parents[2] / "src" / "sislink" / "console" / "templates"


@pytest.fixture(scope="module")
def sis() -> Iterator[RunningProvider]:
    with running_provider(profile="generic-1.2", students=12) as running:
        yield running


@dataclass
class School:
    served: Console
    admin: PageClient
    teacher: PageClient
    class_id: int

    teacher_email: str

    def teacher_actor(self) -> Actor:
        with self.served.classroom.session() as session:
            found = people.find_person_by_email(session, self.teacher_email)
            assert found is not None
            return Actor.of(found)


@pytest.fixture
def school(sis: RunningProvider, tmp_path: Path) -> Iterator[School]:
    with console(tmp_path) as served:
        admin = served.client()
        admin.sign_in(ADMIN_EMAIL)
        connect_and_authorise(admin, sis)
        import_roster(served, admin)
        teacher = invite_and_sign_in(served, sis.teacher_email)
        listed = teacher.get("/classes")
        class_id = int(re.findall(r'href="/classes/(\d+)"', listed.text)[0])
        yield School(served, admin, teacher, class_id, sis.teacher_email)


def test_no_page_tells_a_person_to_run_a_sislink_command() -> None:
    shown = {
        path.name: re.findall(r"<code>sislink [^<]*</code>", path.read_text())
        for path in TEMPLATES.glob("*.html")
    }
    assert {name: found for name, found in shown.items() if found} == {}


def test_a_services_command_hint_reads_as_the_web_action_in_every_page(school: School) -> None:
    """Services' sentences name commands in brackets; a page says where the web does it."""
    teacher, cid = school.teacher, school.class_id
    with school.served.classroom.transaction() as session:
        admin = people.find_person_by_email(session, ADMIN_EMAIL)
        assert admin is not None
        _, expired = accounts.invite(
            session, Actor.of(admin), school.teacher_email, valid_for=timedelta(seconds=-1)
        )
    shown = {
        # A SIS class the teacher does not have: the link page's refusal.
        "link": teacher.post(f"/classes/{cid}/link", {"sis_class": "no-such-class"}),
        # Coursework exported while the class is not linked: the export's refusal.
        "export": teacher.post(f"/classes/{cid}/export", {}),
        "unknown invitation": teacher.get("/set-password?token=no-such-token"),
        "expired invitation": teacher.get(f"/set-password?token={expired}"),
    }
    said = {name: page.text for name, page in shown.items()}
    command = re.compile(r"sislink (?:connect|authorise|classes|users|roster|sign-in|marks)\b")
    for name, text in said.items():
        assert not command.search(text), (name, command.findall(text))
    assert "(the list on the class&#39;s Link page)" in said["link"], said["link"]
    for name in ("unknown invitation", "expired invitation"):
        assert "(Invite, on the administrator&#39;s Accounts page)" in said[name], said[name]
    assert "has expired" in said["expired invitation"]


def test_a_teacher_exports_every_class_from_my_classes_and_reads_each_outcome(
    school: School,
) -> None:
    teacher, cid = school.teacher, school.class_id
    # The form refuses coursework the SIS cannot take; the API or command line may add it.
    with school.served.classroom.transaction() as session:
        coursework_service.create_coursework(
            session, school.teacher_actor(), cid, title="Quiz", max_points=10, publish=True
        )
    assert 'id="export-all"' in teacher.get("/classes").text
    started = teacher.post("/classes/export-all", {})
    assert re.search(r"/classes/exports/\d+$", str(started.url)), started.url
    school.served.background.wait_idle()
    page = teacher.get(str(started.url))
    # The Quiz has no due date: skipped, so the export needs attention, with the count.
    assert 'class="badge needs_attention">needs attention: 1 not applied' in page.text, page.text
    row = page.text.split(f'<tr><td><a href="/classes/{cid}">')[1].split("</tr>")[0]
    assert 'class="badge needs_attention"' in row and "1 item skipped" in row
    assert 'class="badge succeeded"' not in row
    # Another teacher's export of every class is not this teacher's to read.
    admin_job = school.admin.post("/classes/export-all", {})
    school.served.background.wait_idle()
    assert teacher.get(str(admin_job.url)).status_code == 404


def test_a_teacher_cancels_their_export_and_not_someone_elses(school: School) -> None:
    teacher, cid = school.teacher, school.class_id
    with school.served.classroom.transaction() as session:
        mine = jobs.queue_job(
            session, school.teacher_actor(), "mark_export", class_id=cid, lock_key=f"t:{cid}"
        )
        others = jobs.queue_job(
            session, Actor.system(), "mark_export", class_id=cid, lock_key=f"s:{cid}"
        )
        mine_id, others_id = mine.id, others.id
    progress = teacher.get(f"/classes/{cid}/export/{mine_id}")
    assert 'id="cancel-export"' in progress.text and 'aria-live="polite"' in progress.text
    done = teacher.post(f"/classes/{cid}/jobs/{mine_id}/cancel", {})
    assert f"Job {mine_id} is cancelled" in done.text
    refused = teacher.post(f"/classes/{cid}/jobs/{others_id}/cancel", {})
    assert refused.status_code == 403
    assert "Only an administrator may cancel a job someone else started." in refused.text
    with school.served.classroom.session() as session:
        assert session.get(Job, mine_id).status == JobStatus.CANCELLED  # type: ignore[union-attr]
        assert session.get(Job, others_id).status == JobStatus.QUEUED  # type: ignore[union-attr]
    # The administrator may cancel any job.
    school.admin.get("/admin/roster")
    school.admin.post(f"/admin/jobs/{others_id}/cancel", {})
    with school.served.classroom.session() as session:
        assert session.get(Job, others_id).status == JobStatus.CANCELLED  # type: ignore[union-attr]


def test_a_failed_export_says_nothing_was_lost_offers_retry_and_keeps_the_sis_answer_folded(
    school: School,
) -> None:
    teacher, cid = school.teacher, school.class_id
    sis_answer = "503 Service Unavailable: upstream gradebook offline"
    with school.served.classroom.transaction() as session:
        row = MarkExportReport(
            class_id=cid,
            outcome="failed",
            writes=0,
            summary={
                "outcome": "failed",
                "failed": sis_answer,
                "counts": {},
                "writes": 0,
                "started_at": "2026-10-01T12:00:00+00:00",
            },
            items=[],
        )
        session.add(row)
        session.flush()
        report_id = row.id
    page = teacher.get(f"/classes/{cid}/reports/{report_id}")
    failed = page.text.split('id="export-failed"')[1].split("</div>")[0]
    assert "Nothing was lost" in failed and "the next export" in failed
    assert 'id="retry-export"' in failed and f'action="/classes/{cid}/export"' in failed
    details = failed.split("<details")[1]
    assert sis_answer in details  # the SIS's own words are behind the toggle, not in front
    assert sis_answer not in failed.split("<details")[0]
    assert 'class="badge succeeded"' not in teacher.get(f"/classes/{cid}").text
    # Once the class cannot be exported (unlinked), Retry gives way to what to do first.
    teacher.post(f"/classes/{cid}/unlink", {})
    unlinked = teacher.get(f"/classes/{cid}/reports/{report_id}")
    assert 'id="retry-export"' not in unlinked.text
    assert 'id="export-next"><strong>Before exporting again:</strong>' in unlinked.text


def test_a_roster_import_that_left_records_out_is_needs_attention_with_the_count(
    school: School,
) -> None:
    with school.served.classroom.transaction() as session:
        job = jobs.queue_job(session, Actor.system(), "roster_import", lock_key="r:test")
        jobs.start_job(session, job.id)
        jobs.finish_job(
            session,
            job.id,
            JobStatus.NEEDS_ATTENTION,
            {"mode": "full", "attention": {"count": 7, "reasons": ["bad dates"]}},
        )
        job_id = job.id
    for page in (
        school.admin.get("/admin/roster"),
        school.admin.get(f"/admin/roster/jobs/{job_id}"),
    ):
        assert "needs attention: 7 not applied" in page.text, page.url


def test_a_held_import_is_approved_only_after_reading_what_it_deactivates(
    school: School,
) -> None:
    gone = [f"stu-{n}" for n in range(14)]
    reason = (
        "This import would deactivate 14 students. An administrator must approve it "
        "(sislink roster approve JOB) or discard it (sislink roster discard JOB)."
    )
    with school.served.classroom.transaction() as session:
        job = jobs.queue_job(session, Actor.system(), "roster_import", lock_key="r:hold")
        jobs.start_job(session, job.id)
        jobs.hold_job(
            session,
            job.id,
            reason,
            # As the import keeps it: the reason in the report too.
            {
                "hold_reason": reason,
                "deactivations": {"students": gone, "classes": ["c-1"]},
                "counts": {},
            },
        )
        job_id = job.id
    roster = school.admin.get("/admin/roster")
    assert f'href="/admin/roster/holds/{job_id}/approve"' in roster.text
    confirm = school.admin.get(f"/admin/roster/holds/{job_id}/approve")
    said = confirm.text.split('id="what-it-deactivates"')[1]
    assert "Approving deactivates 15 records" in said
    assert "14 students" in said and "stu-0" in said and "and 4 more" in said
    assert 'id="confirm-approve"' in confirm.text
    # The service's sentence, without its command-line hints: the page has the buttons.
    for page in (roster, confirm):
        assert "An administrator must approve it or discard it." in page.text
        assert "sislink roster" not in page.text
    discard = school.admin.get(f"/admin/roster/holds/{job_id}/discard")
    assert "Discarding deactivates nothing" in discard.text
    school.admin.post(f"/admin/roster/holds/{job_id}/discard", {})
    again = school.admin.get(f"/admin/roster/holds/{job_id}/approve")
    assert again.status_code == 409 and "not on hold any more" in again.text


def test_the_gradebook_downloads_as_a_sheet_that_imports_back(school: School) -> None:
    teacher, cid = school.teacher, school.class_id
    teacher.post(f"/classes/{cid}/coursework", {"title": "=Essay", "points": "20", "publish": "on"})
    grid = teacher.get(f"/classes/{cid}/gradebook")
    cells = re.findall(r'<input name="(m\d+_\d+)"', grid.text)
    teacher.post(f"/classes/{cid}/gradebook", {cells[0]: "18", cells[1]: "EX"})
    sheet = teacher.get(f"/classes/{cid}/gradebook.csv")
    assert sheet.headers["content-type"].startswith("text/csv")
    assert "attachment" in sheet.headers["content-disposition"]
    lines = sheet.text.lstrip("\ufeff").splitlines()
    assert lines[0] == "email,'=Essay"  # not run as a formula by a spreadsheet
    assert sorted(line.split(",")[1] for line in lines[1:])[-2:] == ["18", "EX"]

    # Import: the first student's 18 becomes 19; a stranger's row is refused in words.
    first = next(line for line in lines[1:] if line.endswith(",18"))
    changed = f"email,=Essay\n{first[:-3]},19\nnobody@else.example,5\n"
    done = teacher.post(
        f"/classes/{cid}/gradebook/import",
        {"returned": "on"},
        files={"sheet": ("marks.csv", changed.encode(), "text/csv")},
    )
    assert done.status_code == 200, done.text
    assert "Imported 1 mark, returned to students." in done.text
    assert "nobody@else.example" in done.text and "1 cell was not imported" in done.text
    with school.served.classroom.session() as session:
        scores = sorted(m.score for m in session.scalars(select(Mark)) if m.score is not None)
    assert scores == [19.0]
    empty = teacher.post(f"/classes/{cid}/gradebook/import", {})
    assert empty.status_code == 400 and "Choose the sheet to import" in empty.text


def test_a_class_titled_in_any_script_downloads_its_gradebook(school: School) -> None:
    from sislink.classroom.models import Class

    with school.served.classroom.transaction() as session:
        klass = session.get(Class, school.class_id)
        assert klass is not None
        klass.title = "Математика 数学 Łódź"
    sheet = school.teacher.get(f"/classes/{school.class_id}/gradebook.csv")
    assert sheet.status_code == 200
    said = sheet.headers["content-disposition"]
    assert said.startswith("attachment;")
    # A browser names the file in the class's own words; an old one gets a plain name.
    assert "filename*=UTF-8''gradebook-" in said
    assert "%D0%9C%D0%B0%D1%82" in said
    assert 'filename="gradebook-' in said
    said.encode("ascii")


def test_a_course_link_from_google_that_is_not_a_web_address_is_not_a_link(
    school: School,
) -> None:
    """The class page links the course's alternateLink as Google answered it: one that is
    not https (javascript:..., data:...) would run in the console's pages when clicked."""
    from sislink.classroom.models import GoogleCourseLink

    with school.served.classroom.transaction() as session:
        session.add(
            GoogleCourseLink(
                class_id=school.class_id,
                domain="school.example",
                alias="sislink-1",
                course_id="123",
                course_state="ACTIVE",
                alternate_link="javascript:fetch('/logout')",
            )
        )
    page = school.teacher.get(f"/classes/{school.class_id}")
    assert page.status_code == 200
    assert 'id="google-classroom"' in page.text
    assert "javascript:" not in page.text
    assert 'id="google-course-link"' not in page.text
    with school.served.classroom.transaction() as session:
        link = session.scalars(select(GoogleCourseLink)).one()
        link.alternate_link = "https://classroom.google.com/c/123"
    page = school.teacher.get(f"/classes/{school.class_id}")
    assert 'href="https://classroom.google.com/c/123"' in page.text


def test_a_co_teacher_cannot_open_the_link_page_nor_read_the_primary_teachers_sis_classes(
    school: School, sis: RunningProvider
) -> None:
    """Only the primary teacher links a class (its page offers Link to them alone); the link
    page, opened by its address, listed the primary teacher's SIS classes to a co-teacher,
    as 'Your active classes' (the API lists a teacher only their own)."""
    from sislink.classroom.models import EnrolmentRole, Role
    from sislink.classroom.services import classes

    co_id = school.served.person_with_password("co@school.example", Role.TEACHER, "Co Teacher")
    with school.served.classroom.transaction() as session:
        classes.enrol(session, Actor.system(), school.class_id, co_id, EnrolmentRole.TEACHER)
    co = school.served.client()
    co.sign_in("co@school.example")
    assert co.get(f"/classes/{school.class_id}").status_code == 200
    primary_sees = school.teacher.get(f"/classes/{school.class_id}/link")
    offered = re.findall(r'name="sis_class" value="([^"]+)"', primary_sees.text)
    assert offered
    page = co.get(f"/classes/{school.class_id}/link")
    assert page.status_code == 403
    assert "Only the primary teacher" in page.text
    assert not any(sourced_id in page.text for sourced_id in offered)


def test_a_sheet_too_large_for_a_gradebook_is_told_in_a_sentence_under_the_request_bound(
    school: School,
) -> None:
    """Requests are bounded (console.app.MAX_REQUEST_BYTES) above the largest sheet, so a
    sheet past its own bound is still answered on its page, in words."""
    from sislink.console.pages.class_actions import MAX_SHEET_BYTES

    big = b"email,Essay\n" + b"x" * (MAX_SHEET_BYTES + 500_000)
    answer = school.teacher.post(
        f"/classes/{school.class_id}/gradebook/import",
        {},
        files={"sheet": ("marks.csv", big, "text/csv")},
    )
    assert answer.status_code == 400
    assert "larger than 2 MB" in answer.text and "Nothing was imported" in answer.text


def test_every_page_starts_with_a_skip_link_to_its_main_content(school: School) -> None:
    focusable = re.compile(
        r"<(a\s[^>]*href|button|select|textarea|input(?![^>]*type=\"hidden\"))[^>]*>"
    )
    pages = [
        school.served.client().get("/login"),
        school.teacher.get("/classes"),
        school.teacher.get(f"/classes/{school.class_id}"),
        school.admin.get("/admin/people"),
    ]
    for page in pages:
        body = page.text.split("<body>", 1)[1]
        first = focusable.search(body)
        assert first is not None and first.group(0) == '<a class="skip-link" href="#main">', (
            page.url,
            first,
        )
        assert body.count('<main id="main"') == 1, page.url


def test_coursework_of_a_linked_class_is_refused_on_the_form_until_the_sis_could_take_it(
    school: School,
) -> None:
    teacher, cid = school.teacher, school.class_id
    form = teacher.get(f"/classes/{cid}/coursework/new")
    assert 'id="sis-needs"' in form.text
    assert re.search(
        r'name="due" id="due" value="[^"]*" required min="\d{4}-\d\d-\d\d" max=', form.text
    )
    categories = {
        name: value
        for value, name in re.findall(r'<option value="(\d+)" >([^<]+)</option>', form.text)
    }

    def coursework_count() -> int:
        with school.served.classroom.session() as session:
            return len(coursework_service.coursework_of_class(session, cid))

    before = coursework_count()
    typed = {"title": "Lab report", "points": "", "publish": "on", "export_to_sis": "on"}
    refused = teacher.post(f"/classes/{cid}/coursework", typed)
    assert refused.status_code == 400
    assert 'id="sis-refused"' in refused.text
    assert 'id="points-error"' in refused.text and "The SIS needs points" in refused.text
    assert 'id="due-error"' in refused.text and "The SIS needs a due date" in refused.text
    # The SIS has no default category: one of the SIS class's must be chosen from the list.
    assert "Choose one of the SIS's categories" in form.text
    assert 'id="category_id-error"' in refused.text and "choose one of: " in refused.text
    assert 'value="Lab report"' in refused.text  # the form keeps what was typed
    outside = teacher.post(
        f"/classes/{cid}/coursework",
        {**typed, "points": "20", "due": "1990-01-01", "category_id": categories["Homework"]},
    )
    assert outside.status_code == 400
    said = outside.text.replace("&#39;", "'")
    assert "The due date 1990-01-01 is outside every grading period of the SIS class" in said
    assert f'<option value="{categories["Homework"]}" selected>' in outside.text
    assert coursework_count() == before  # nothing saved

    # Kept out of the SIS, it may go without: the SIS will not see it.
    kept_here = {"title": "Notes", "points": "", "publish": "on"}
    assert "Coursework added: Notes." in teacher.post(f"/classes/{cid}/coursework", kept_here).text
    made = teacher.post(
        f"/classes/{cid}/coursework",
        {
            **typed,
            "points": "20",
            "due": date.today().isoformat(),  # inside the seeded school year
            "category_id": categories["Homework"],
        },
    )
    assert "Coursework added: Lab report." in made.text
    assert coursework_count() == before + 2


def test_every_destructive_button_asks_first() -> None:
    """Delete, unlink, revoke, remove, disconnect, disable, discard: a confirmation in the
    browser (onsubmit confirm) or the button is on a page that says what it will do first."""
    destructive = re.compile(r'action="[^"]*/(delete|unlink|revoke|remove|disconnect|disable)"')
    unasked = []
    for path in TEMPLATES.glob("*.html"):
        for form in re.findall(r"<form\b.*?</form>", path.read_text(), flags=re.S):
            if not destructive.search(form.split(">", 1)[0]):
                continue
            asks = "return confirm(" in form.split(">", 1)[0] or re.search(
                r'id="(roster-)?confirm-', form
            )
            if not asks:
                unasked.append((path.name, form.split(">", 1)[0]))
    assert unasked == []


def test_a_due_date_typed_as_a_day_is_that_day_for_a_school_far_east_of_utc(
    school: School,
) -> None:
    """A school in New Zealand (UTC+12/13): a due date picked on the last day of the SIS class's
    grading periods is taken (the export goes by the school's day), kept as that day, and
    shown as it. Kept at noon UTC, it was the next day there: refused as outside every period."""
    teacher, cid = school.teacher, school.class_id
    with school.served.classroom.transaction() as session:
        time_zone.set_school_time_zone(session, Actor.system(), "Pacific/Auckland")
    form = teacher.get(f"/classes/{cid}/coursework/new")
    last_day = re.findall(
        r'name="due" id="due" value="[^"]*" required min="[^"]+" max="([^"]+)"', form.text
    )[0]
    homework = re.findall(r'<option value="(\d+)" >Homework</option>', form.text)[0]
    typed = {
        "title": "Last-day essay",
        "points": "20",
        "due": last_day,
        "category_id": homework,
        "publish": "on",
        "export_to_sis": "on",
    }
    made = teacher.post(f"/classes/{cid}/coursework", typed)
    assert "Coursework added: Last-day essay." in made.text, made.text
    with school.served.classroom.session() as session:
        work = next(
            w
            for w in coursework_service.coursework_of_class(session, cid)
            if w.title == "Last-day essay"
        )
        assert work.due_date is not None
        assert work.due_date.astimezone(ZoneInfo("Pacific/Auckland")).date().isoformat() == last_day
        work_id = work.id
    assert f"<td>{last_day}</td>" in teacher.get(f"/classes/{cid}").text
    edit = teacher.get(f"/classes/{cid}/coursework/{work_id}/edit")
    assert f'name="due" id="due" value="{last_day}"' in edit.text
