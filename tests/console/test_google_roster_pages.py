"""The roster into Google Classroom from the administrator's Google Classroom page and over REST
(/api/admin/google/roster-sync), against the built-in SIS and the local Classroom: preview,
sync in the background, a hold shown with what it removes, approved; teachers kept out."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, update

from console.console_world import ADMIN_EMAIL, console
from sislink.classroom import Actor
from sislink.classroom.models import Enrolment, Person, Role
from sislink.classroom.services.api_tokens import create_api_token
from sislink.classroom.services.people import find_person_by_email
from sync.google_roster_world import classroom_courses, classroom_matches_the_sis, district


def test_an_administrator_previews_syncs_and_approves_a_hold_from_the_page(
    tmp_path: Path,
) -> None:
    with console(tmp_path) as served, district(served.classroom) as world:
        admin = served.client()
        admin.sign_in(ADMIN_EMAIL)
        page = admin.get("/admin/google")
        assert "Sync roster to Classroom" in page.text and "sislink google" not in page.text

        preview = admin.post("/admin/google/roster-sync/dry-run")
        assert preview.status_code == 200, preview.text
        assert "Preview: what a sync would do now" in preview.text
        assert world.google.backend.tables["course"] == {}

        started = admin.post("/admin/google/roster-sync")
        assert started.status_code == 200 and "Roster sync" in started.text
        served.background.wait_idle(timeout_s=120)
        classroom_matches_the_sis(world)
        shown = admin.get("/admin/google")
        assert 'class="badge succeeded">succeeded' in shown.text

        with served.classroom.transaction() as session:
            leaving = session.scalars(
                select(Enrolment.id).where(Enrolment.role == "student").order_by(Enrolment.id)
            ).all()[:60]
            session.execute(update(Enrolment).where(Enrolment.id.in_(leaving)).values(active=False))
        admin.post("/admin/google/roster-sync")
        served.background.wait_idle(timeout_s=120)
        held = admin.get("/admin/google")
        assert "is on hold" in held.text
        assert "This removes 60 people listed above from their Classroom courses" in held.text
        job_id = int(held.text.split('id="roster-hold-')[1].split('"')[0])

        approved = admin.post(f"/admin/google/roster-sync/{job_id}/approve")
        assert approved.status_code == 200, approved.text
        served.background.wait_idle(timeout_s=120)
        classroom_matches_the_sis(world)
        assert "is on hold" not in admin.get("/admin/google").text


def test_the_roster_sync_over_rest_and_teachers_refused(tmp_path: Path) -> None:
    with console(tmp_path) as served, district(served.classroom) as world:
        teacher_id = served.person_with_password("tom@district.example", Role.TEACHER)
        with served.classroom.transaction() as session:
            admin_person = find_person_by_email(session, ADMIN_EMAIL)
            assert admin_person is not None
            _, token = create_api_token(session, Actor.system(), admin_person)
            teacher = session.get(Person, teacher_id)
            assert teacher is not None
            _, teacher_token = create_api_token(session, Actor.system(), teacher)
        api = served.client().client
        admin = {"Authorization": f"Bearer {token}"}
        refused = api.post(
            "/api/admin/google/roster-sync",
            headers={"Authorization": f"Bearer {teacher_token}"},
            json={},
        )
        assert refused.status_code == 403

        planned = api.post("/api/admin/google/roster-sync", headers=admin, json={"dry_run": True})
        assert planned.status_code == 200, planned.text
        assert planned.json()["status"] == "dry_run" and planned.json()["calls"]["writes"] == 0
        assert classroom_courses(world.google) == {}

        done = api.post("/api/admin/google/roster-sync", headers=admin, json={})
        assert done.status_code == 200, done.text
        assert done.json()["job_status"] == "succeeded"
        classroom_matches_the_sis(world)
        runs = api.get("/api/admin/google/roster-sync", headers=admin).json()
        assert [r["job_id"] for r in runs["history"]] == [done.json()["job_id"]]
        assert runs["holds"] == []
        one = api.get(f"/api/admin/google/roster-sync/{done.json()['job_id']}", headers=admin)
        assert one.json()["report"]["counts"]["courses"]["created"] == len(world.roster())
        missing = api.post("/api/admin/google/roster-sync/99999/discard", headers=admin)
        assert missing.status_code == 404
