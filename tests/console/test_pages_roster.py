"""The administrator's Roster page against the built-in SIS over HTTP: import now as a job with
its report in the history, a dry run that changes nothing, a hold approved with its plan, and
the schedule with its problems answered next to the field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from console.console_world import ADMIN_EMAIL, connect_and_authorise, console, import_roster
from sislink.classroom.models import Person
from sislink.oneroster.provider.server import RunningProvider, running_provider


@pytest.fixture(scope="module")
def sis() -> Iterator[RunningProvider]:
    with running_provider(profile="generic-1.2", students=30) as running:
        yield running


def people_count(classroom: object) -> int:
    with classroom.session() as session:  # type: ignore[attr-defined]
        return int(session.scalar(select(func.count()).select_from(Person)))


def test_import_now_runs_as_a_job_and_its_report_is_in_the_history(
    sis: RunningProvider, tmp_path: Path
) -> None:
    with console(tmp_path) as served:
        admin = served.client()
        admin.sign_in(ADMIN_EMAIL)
        connect_and_authorise(admin, sis)
        before = people_count(served.classroom)
        done = import_roster(served, admin)
        assert 'id="job-status">succeeded' in done.text
        assert "students" in done.text and "Requests to the SIS" in done.text
        assert people_count(served.classroom) > before
        history = admin.get("/admin/roster")
        assert 'class="badge succeeded"' in history.text


def test_a_dry_run_shows_the_plan_and_changes_nothing(sis: RunningProvider, tmp_path: Path) -> None:
    with console(tmp_path) as served:
        admin = served.client()
        admin.sign_in(ADMIN_EMAIL)
        connect_and_authorise(admin, sis)
        before = people_count(served.classroom)
        planned = admin.post("/admin/roster/dry-run", {"full": "on"})
        assert planned.status_code == 200
        assert "Dry run (full): nothing was changed" in planned.text
        assert "would change" in planned.text
        assert people_count(served.classroom) == before


def test_importing_before_the_sis_is_authorised_says_what_to_do(tmp_path: Path) -> None:
    with console(tmp_path) as served:
        admin = served.client()
        admin.sign_in(ADMIN_EMAIL)
        page = admin.get("/admin/roster")
        assert "must connect it" in page.text and "disabled" in page.text
        refused = admin.post("/admin/roster/import", {})
        assert refused.status_code == 409 and "must connect it" in refused.text


def test_the_schedule_is_saved_and_a_bad_interval_is_answered_next_to_it(tmp_path: Path) -> None:
    with console(tmp_path) as served:
        admin = served.client()
        admin.sign_in(ADMIN_EMAIL)
        admin.get("/admin/roster")
        bad = admin.post("/admin/roster/schedule", {"enabled": "on", "interval_minutes": "often"})
        assert bad.status_code == 400 and 'id="interval_minutes-error"' in bad.text
        assert 'value="often"' in bad.text  # what was typed is kept
        too_often = admin.post("/admin/roster/schedule", {"interval_minutes": "1"})
        assert "at most every 5 minutes" in too_often.text
        backwards = admin.post(
            "/admin/roster/schedule",
            {"interval_minutes": "60", "pause_from": "2026-08-01", "pause_until": "2026-07-01"},
        )
        assert 'id="pause_until-error"' in backwards.text and "swap the two dates" in backwards.text
        saved = admin.post(
            "/admin/roster/schedule",
            {
                "enabled": "on",
                "interval_minutes": "120",
                "pause_from": "2026-07-01",
                "pause_until": "2026-08-15",
            },
        )
        assert "Schedule saved." in saved.text
        assert 'value="120"' in saved.text and 'value="2026-08-15"' in saved.text


def test_an_import_that_would_deactivate_much_of_the_roster_waits_for_approval(
    tmp_path: Path,
) -> None:
    with (
        running_provider(profile="generic-1.2", students=40, seed=11) as sis,
        console(tmp_path) as served,
    ):
        admin = served.client()
        admin.sign_in(ADMIN_EMAIL)
        connect_and_authorise(admin, sis)
        import_roster(served, admin)
        students = [
            user["sourcedId"]
            for user in sis.store.iter_all("user")
            if user.get("roles", [{}])[0].get("role") == "student" or user.get("role") == "student"
        ]
        for sourced_id in students[: len(students) // 3]:
            sis.store.delete("user", sourced_id)
        held = import_roster(served, admin)
        assert 'id="job-status">on hold' in held.text
        page = admin.get("/admin/roster")
        assert "is on hold" in page.text and "would be deactivated" in page.text
        job_id = page.text.split('id="hold-')[1].split('"')[0]
        approved = admin.post(f"/admin/roster/holds/{job_id}/approve")
        assert "approved and applied" in approved.text
        assert 'id="job-status">succeeded' in approved.text


def test_a_dry_run_the_database_refuses_is_a_sentence_not_a_500(tmp_path: Path) -> None:
    from sqlalchemy import text

    with (
        running_provider(profile="generic-1.2", students=30) as own_sis,
        console(tmp_path) as served,
    ):
        admin = served.client()
        admin.sign_in(ADMIN_EMAIL)
        connect_and_authorise(admin, own_sis)
        with served.classroom.engine.begin() as connection:
            # A rule in the database itself that refuses every enrolment the import writes.
            connection.execute(
                text(
                    "CREATE TRIGGER refuse_enrolments BEFORE INSERT ON enrolment "
                    "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
                )
            )
        planned = admin.post("/admin/roster/dry-run", {"full": "on"})
        assert planned.status_code == 409
        assert "changed nothing" in planned.text
        for leak in ("INSERT", "parameters", "refused by the test", "Traceback"):
            assert leak not in planned.text


def test_a_dry_run_lists_rejected_records_and_says_it_needs_attention(tmp_path: Path) -> None:
    with (
        running_provider(profile="generic-1.2", students=30) as own_sis,
        console(tmp_path) as served,
    ):
        spoiled = next(
            u for u in own_sis.store.iter_all("user") if u["roles"][0]["role"] == "student"
        )
        own_sis.store.put("user", {**spoiled, "status": "Active!"})
        admin = served.client()
        admin.sign_in(ADMIN_EMAIL)
        connect_and_authorise(admin, own_sis)
        planned = admin.post("/admin/roster/dry-run", {"full": "on"})
        assert planned.status_code == 200
        assert 'id="needs-attention"' in planned.text
        assert f"students {spoiled['sourcedId']}: status" in planned.text
