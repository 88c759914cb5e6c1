"""The administrator's Google Classroom connection over REST (/api/admin/google), against the
local Classroom: the same lifecycle as `sislink google ...`, admin-only, the key never echoed."""

from __future__ import annotations

import json
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
from sislink.googleclassroom.emulator import ClassroomConfig, running_classroom


@pytest.fixture
def classroom(tmp_path: Path) -> Iterator[Classroom]:
    opened = open_classroom(f"sqlite:///{tmp_path / 'api.db'}", secret_box=SecretBox.generate())
    try:
        yield opened
    finally:
        opened.close()


def _token(classroom: Classroom, email: str, role: Role) -> str:
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


def test_connect_authorise_and_disconnect_over_rest(api: TestClient, classroom: Classroom) -> None:
    admin = {"Authorization": f"Bearer {_token(classroom, 'ada@district.example', Role.ADMIN)}"}
    with running_classroom(students=20) as local:
        key_text = local.key_file.read_text()
        private = json.loads(key_text)["private_key"]
        created = api.post(
            "/api/admin/google/connection",
            headers=admin,
            json={"key_file": key_text, "admin_email": local.admin_email,
                  "api_endpoint": local.api_url},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        assert private[40:100] not in created.text
        authorised = api.post("/api/admin/google/connection/authorise", headers=admin)
        assert authorised.status_code == 200, authorised.text
        assert authorised.json()["status"] == "authorised"
        shown = api.get("/api/admin/google/connection", headers=admin).json()
        assert shown["connected"] is True and shown["connection"]["domain"] == local.domain
        gone = api.post("/api/admin/google/connection/disconnect", headers=admin)
        assert gone.status_code == 200 and gone.json()["status"] == "disconnected"
        assert api.get("/api/admin/google/connection", headers=admin).json()["connected"] is False


def test_a_failed_authorise_answers_its_problem_and_a_teacher_is_refused(
    api: TestClient, classroom: Classroom
) -> None:
    admin = {"Authorization": f"Bearer {_token(classroom, 'ada@district.example', Role.ADMIN)}"}
    teacher = {"Authorization": f"Bearer {_token(classroom, 'tom@district.example', Role.TEACHER)}"}
    with running_classroom(students=5, config=ClassroomConfig(api_enabled=False)) as local:
        body = {"key_file": local.key_file.read_text(), "admin_email": local.admin_email,
                "api_endpoint": local.api_url}  # fmt: skip
        assert (
            api.post("/api/admin/google/connection", headers=teacher, json=body).status_code == 403
        )
        api.post("/api/admin/google/connection", headers=admin, json=body)
        refused = api.post("/api/admin/google/connection/authorise", headers=admin)
    assert refused.status_code == 422
    assert refused.json()["detail"]["problem"] == "api_disabled"
    bad = api.post(
        "/api/admin/google/connection",
        headers=admin,
        json={"key_file": "{}", "admin_email": "ada@district.example"},
    )
    assert bad.status_code == 422
    assert "not a service account key" in bad.json()["detail"]["message"]
