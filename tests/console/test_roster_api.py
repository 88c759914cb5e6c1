"""The roster import over the REST API (/api/admin/roster), admin-only, against the built-in SIS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sislink.classroom import Actor, Classroom, open_classroom
from sislink.classroom.models import Role
from sislink.classroom.secrets import SecretBox
from sislink.classroom.services import connections, people
from sislink.classroom.services.api_tokens import create_api_token
from sislink.console.app import create_app
from sislink.oneroster.provider.server import RunningProvider, running_provider


@pytest.fixture
def classroom(tmp_path: Path) -> Iterator[Classroom]:
    opened = open_classroom(f"sqlite:///{tmp_path / 'api.db'}", secret_box=SecretBox.generate())
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def sis(classroom: Classroom) -> Iterator[RunningProvider]:
    with running_provider(students=60) as running:
        with classroom.transaction() as session:
            saved = connections.save_connection(
                session,
                Actor.system(),
                classroom.secret_box,
                partner=running.profile,
                version=running.version,
                host_url=running.host_url,
                access_key=running.client_id,
                secret_code=running.client_secret,
                token_url=running.token_url,
            )
            connections.mark_authorised(session, Actor.system(), saved.id, district_sourced_id="d")
        yield running


def headers(classroom: Classroom, email: str, role: Role) -> dict[str, str]:
    with classroom.transaction() as session:
        person = people.create_person(
            session, Actor.system(), name=email.split("@")[0], email=email, roles=[role]
        )
        _, token = create_api_token(session, Actor.system(), person)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def api(classroom: Classroom) -> Iterator[TestClient]:
    app = create_app()
    app.state.classroom = classroom
    with TestClient(app) as client:
        yield client


def test_an_administrator_imports_reviews_a_hold_and_approves_it_over_http(
    api: TestClient, classroom: Classroom, sis: RunningProvider
) -> None:
    admin = headers(classroom, "ada@district.example", Role.ADMIN)
    plan = api.post("/api/admin/roster/imports", headers=admin, json={"dry_run": True})
    assert plan.status_code == 200, plan.text
    assert plan.json()["status"] == "dry_run"
    done = api.post("/api/admin/roster/imports", headers=admin, json={})
    assert done.status_code == 200, done.text
    assert done.json()["counts"]["students"]["created"] == 60
    enrolments = [e["sourcedId"] for e in sis.store.iter_all("enrollment")]
    for sid in enrolments[: len(enrolments) // 3]:
        sis.store.delete("enrollment", sid)
    held = api.post("/api/admin/roster/imports", headers=admin, json={"full": True}).json()
    assert held["job_status"] == "on_hold"
    listed = api.get("/api/admin/roster/holds", headers=admin).json()
    assert [h["job_id"] for h in listed] == [held["job_id"]]
    job = api.get(f"/api/admin/roster/jobs/{held['job_id']}", headers=admin).json()
    assert job["status"] == "on_hold"
    approved = api.post(f"/api/admin/roster/holds/{held['job_id']}/approve", headers=admin)
    assert approved.status_code == 200
    assert approved.json()["counts"]["enrolments"]["deactivated"] == len(enrolments) // 3
    again = api.post(f"/api/admin/roster/holds/{held['job_id']}/approve", headers=admin)
    assert again.status_code == 409
    history = api.get("/api/admin/roster/history", headers=admin).json()
    assert [j["status"] for j in history] == ["succeeded", "succeeded"]


def test_teachers_may_not_import_the_roster(
    api: TestClient, classroom: Classroom, sis: RunningProvider
) -> None:
    teacher = headers(classroom, "tom@district.example", Role.TEACHER)
    answer = api.post("/api/admin/roster/imports", headers=teacher, json={})
    assert answer.status_code == 403


def test_the_schedule_is_read_and_changed_over_http(api: TestClient, classroom: Classroom) -> None:
    admin = headers(classroom, "ada@district.example", Role.ADMIN)
    assert api.get("/api/admin/roster/schedule", headers=admin).json()["interval_minutes"] == 360
    body = {"interval_minutes": 120, "pause_from": "2026-07-01", "pause_until": "2026-08-15"}
    saved = api.put("/api/admin/roster/schedule", headers=admin, json=body)
    assert saved.status_code == 200
    assert api.get("/api/admin/roster/schedule", headers=admin).json() == {"enabled": True, **body}
    backwards = {"pause_from": "2026-08-15", "pause_until": "2026-07-01"}
    assert api.put("/api/admin/roster/schedule", headers=admin, json=backwards).status_code == 422
