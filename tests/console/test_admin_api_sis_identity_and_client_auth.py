"""The administrator's REST API says what the command line says of client authentication
(`client_auth`, issue 14 item 10) and of a saved connection whose SIS now reports another
district (a 409 asking for `confirm_different_sis`, issue 14 item 5)."""

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


@pytest.fixture
def api(classroom: Classroom) -> Iterator[TestClient]:
    app = create_app()
    app.state.classroom = classroom
    with TestClient(app) as client:
        yield client


@pytest.fixture
def admin(classroom: Classroom) -> dict[str, str]:
    with classroom.transaction() as session:
        person = people.create_person(
            session, Actor.system(), name="Ada", email="ada@district.example", roles=[Role.ADMIN]
        )
        _, token = create_api_token(session, Actor.system(), person)
    return {"Authorization": f"Bearer {token}"}


def test_client_auth_post_over_the_rest_api(api: TestClient, admin: dict[str, str]) -> None:
    with running_provider(students=20, client_auth=["post"]) as sis:
        body = {
            "sis": "generic-1.2",
            "host_url": sis.host_url,
            "token_url": sis.token_url,
            "access_key": sis.client_id,
            "secret_code": sis.client_secret,
        }
        assert api.post("/api/admin/connection", headers=admin, json=body).status_code == 201
        refused = api.post("/api/admin/connection/authorise", headers=admin)
        assert refused.status_code >= 400
        assert "does not take client credentials by HTTP Basic" in refused.text
        created = api.post(
            "/api/admin/connection", headers=admin, json={**body, "client_auth": "post"}
        )
        assert created.status_code == 201 and created.json()["client_auth"] == "post"
        authorised = api.post("/api/admin/connection/authorise", headers=admin)
        assert authorised.status_code == 200, authorised.text
        wrong = api.post(
            "/api/admin/connection", headers=admin, json={**body, "client_auth": "digest"}
        )
        assert wrong.status_code == 422


def test_a_saved_connection_that_now_reaches_another_district_needs_confirmation(
    api: TestClient, admin: dict[str, str]
) -> None:
    with running_provider(students=20) as sis:
        body = {
            "sis": "generic-1.2",
            "host_url": sis.host_url,
            "token_url": sis.token_url,
            "access_key": sis.client_id,
            "secret_code": sis.client_secret,
        }
        assert api.post("/api/admin/connection", headers=admin, json=body).status_code == 201
        first = api.post("/api/admin/connection/authorise", headers=admin).json()
        for org in sis.store.query("org", limit=100).records:
            if org.get("type") == "district":
                sis.store.delete("org", org["sourcedId"])
                sis.store.put("org", {**org, "sourcedId": "another-district"})
        asked = api.post("/api/admin/connection/authorise", headers=admin)
        assert asked.status_code == 409, asked.text
        assert "now reaches another district" in asked.text and "Authorised" not in asked.text
        confirmed = api.post(
            "/api/admin/connection/authorise",
            headers=admin,
            json={"confirm_different_sis": True},
        )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["connection"]["sis_identity"] == "generic-1.2:another-district"
    assert confirmed.json()["connection"]["id"] != first["connection"]["id"]
