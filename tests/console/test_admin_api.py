"""The administrator's REST API under /api/admin: the same lifecycle as the command line, over
HTTP, admin-only, against the built-in SIS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sislink.classroom import Actor, Classroom, open_classroom
from sislink.classroom.models import Role
from sislink.classroom.secrets import SecretBox
from sislink.classroom.services import people
from sislink.classroom.services.api_tokens import create_api_token
from sislink.console.app import create_app
from sislink.oneroster.provider.server import running_provider


@pytest.fixture
def classroom(tmp_path: Path) -> Iterator[Classroom]:
    opened = open_classroom(f"sqlite:///{tmp_path / 'api.db'}", secret_box=SecretBox.generate())
    try:
        yield opened
    finally:
        opened.close()


def token_for(classroom: Classroom, email: str, role: Role) -> str:
    with classroom.transaction() as session:
        person = people.create_person(
            session, Actor.system(), name=email.split("@")[0], email=email, roles=[role]
        )
        _, token = create_api_token(session, Actor.system(), person)
        return token


@pytest.fixture
def api(classroom: Classroom) -> Iterator[TestClient]:
    app = create_app()
    app.state.classroom = classroom
    with TestClient(app) as client:
        yield client


@pytest.fixture
def admin_headers(classroom: Classroom) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(classroom, 'ada@district.example', Role.ADMIN)}"}


def test_the_lifecycle_over_the_rest_api(api: TestClient, admin_headers: dict[str, str]) -> None:
    with running_provider(profile="aspen", students=20) as sis:
        created = api.post(
            "/api/admin/connection",
            headers=admin_headers,
            json={
                "sis": "aspen",
                "host_url": sis.host_url,
                "access_key": sis.client_id,
                "secret_code": sis.client_secret,
            },
        )
        assert created.status_code == 201, created.text
        assert created.json()["connected_by"] == "ada@district.example"
        assert sis.client_secret not in created.text
        authorised = api.post("/api/admin/connection/authorise", headers=admin_headers)
        assert authorised.status_code == 200, authorised.text
        assert authorised.json()["message"] == "Authorised"
        off = api.put(
            "/api/admin/connection/permissions",
            headers=admin_headers,
            json={"teacher_export": False},
        )
        assert off.json()["teacher_export_enabled"] is False
        state = api.get("/api/admin/connection", headers=admin_headers).json()
        assert state["connection"]["status"] == "authorised"
        assert state["connection"]["partner"] == "aspen"
        gone = api.post("/api/admin/connection/disconnect", headers=admin_headers)
        assert gone.json()["status"] == "disconnected" and gone.json()["secret_stored"] is False
        trail = api.get("/api/admin/audit", headers=admin_headers).json()
        assert [row["action"] for row in trail] == [
            "sis.disconnected",
            "sis.teacher_export",
            "sis.authorised",
            "sis.connection_saved",
        ]


def test_catalogue_and_eligibility(api: TestClient, admin_headers: dict[str, str]) -> None:
    listed = api.get("/api/admin/partners", headers=admin_headers).json()
    assert {p["name"] for p in listed} >= {"skyward", "aeries", "capita-sims"}
    verdict = api.get(
        "/api/admin/eligibility",
        params={"sis": "infinite-campus", "licence": "false"},
        headers=admin_headers,
    ).json()
    assert verdict["eligible"] is False and "Campus Learning" in verdict["reasons"][0]
    unknown = api.get("/api/admin/eligibility", params={"sis": "nope"}, headers=admin_headers)
    assert unknown.status_code == 422
    assert "There is no SIS named 'nope'" in unknown.json()["detail"]["message"]


def test_failures_answer_one_problem_and_message(
    api: TestClient, admin_headers: dict[str, str]
) -> None:
    bad = api.post(
        "/api/admin/connection",
        headers=admin_headers,
        json={
            "sis": "aeries",
            "host_url": "https://d.aeries.net",
            "access_key": "k",
            "secret_code": "s",
        },
    )
    assert bad.status_code == 422
    assert bad.json()["detail"]["suggestion"] == "https://d.aeries.net/aeries/"
    not_yet = api.post("/api/admin/connection/authorise", headers=admin_headers)
    assert not_yet.status_code == 409
    assert not_yet.json()["detail"]["problem"] == "not_connected"
    with running_provider(profile="skyward", students=20) as sis:
        api.post(
            "/api/admin/connection",
            headers=admin_headers,
            json={
                "sis": "skyward",
                "host_url": sis.host_url,
                "access_key": sis.client_id,
                "secret_code": "wrong",
            },
        )
        refused = api.post("/api/admin/connection/authorise", headers=admin_headers)
    assert refused.status_code == 422
    assert refused.json()["detail"]["problem"] == "wrong_credentials"


def test_the_admin_api_is_for_administrators_only(api: TestClient, classroom: Classroom) -> None:
    assert api.get("/api/admin/connection").status_code == 401
    wrong = api.get("/api/admin/connection", headers={"Authorization": "Bearer slk_made_up"})
    assert wrong.status_code == 401
    teacher = token_for(classroom, "t@school.example", Role.TEACHER)
    forbidden = api.get("/api/admin/connection", headers={"Authorization": f"Bearer {teacher}"})
    assert forbidden.status_code == 403
    assert "Only an administrator" in forbidden.json()["detail"]["message"]
