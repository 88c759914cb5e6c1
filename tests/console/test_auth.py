"""API tokens: shown once, stored only as a hash, resolved to the person who holds them, listed
with when they were last used, and revoked one by one."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from sislink.classroom import Actor, Classroom, open_classroom
from sislink.classroom.models import ApiToken, AuditEvent, Role, utc_now
from sislink.classroom.secrets import SecretBox
from sislink.classroom.services import people
from sislink.console.app import create_app
from sislink.console.auth import (
    create_api_token,
    person_for_token,
    revoke_api_tokens,
    token_hash,
)


def test_a_token_is_stored_only_as_its_hash_and_finds_its_person(tmp_path: Path) -> None:
    classroom = open_classroom(f"sqlite:///{tmp_path / 'auth.db'}", secret_box=SecretBox.generate())
    try:
        with classroom.transaction() as session:
            ada = people.create_person(
                session, Actor.system(), name="Ada", email="ada@x.example", roles=[Role.ADMIN]
            )
            row, token = create_api_token(session, Actor.system(), ada, label="scripts")
            assert row.token_hash == token_hash(token) != token
            assert token not in repr(row)
        with classroom.transaction() as session:
            found = person_for_token(session, token)
            assert found is not None and found.email == "ada@x.example"
            assert person_for_token(session, token + "x") is None
            assert person_for_token(session, "not-a-token") is None
            stored = session.scalars(select(ApiToken)).one()
            assert stored.last_used_at is not None
        with classroom.transaction() as session:
            ada = people.find_person_by_email(session, "ada@x.example")
            assert ada is not None
            assert revoke_api_tokens(session, Actor.system(), ada) == 1
        with classroom.transaction() as session:
            assert person_for_token(session, token) is None
        assert token.encode() not in (tmp_path / "auth.db").read_bytes()
    finally:
        classroom.close()


def _admin_and_teacher_tokens(client: TestClient, classroom: Classroom) -> tuple[str, str, int]:
    with classroom.transaction() as session:
        ada = people.create_person(
            session, Actor.system(), name="Ada", email="ada@x.example", roles=[Role.ADMIN]
        )
        tom = people.create_person(
            session, Actor.system(), name="Tom", email="tom@x.example", roles=[Role.TEACHER]
        )
        _, admin_token = create_api_token(session, Actor.system(), ada, label="admin scripts")
        tom_row, teacher_token = create_api_token(session, Actor.system(), tom, label="gradebook")
        return admin_token, teacher_token, tom_row.id


def test_tokens_are_listed_with_when_last_used_and_revoked_one_by_one_over_rest(
    tmp_path: Path,
) -> None:
    classroom = open_classroom(f"sqlite:///{tmp_path / 'auth.db'}", secret_box=SecretBox.generate())
    try:
        with TestClient(create_app(classroom)) as client:
            admin_token, teacher_token, tom_token_id = _admin_and_teacher_tokens(client, classroom)
            admin = {"Authorization": f"Bearer {admin_token}"}
            tom = {"Authorization": f"Bearer {teacher_token}"}
            listed = client.get("/api/admin/tokens", headers=admin).json()
            by_label = {token["label"]: token for token in listed}
            assert set(by_label) == {"admin scripts", "gradebook"}
            assert by_label["gradebook"]["last_used_at"] is None
            assert teacher_token not in str(listed) and admin_token not in str(listed)
            assert client.get("/api/teacher/classes", headers=tom).status_code == 200
            mine = client.get("/api/teacher/tokens", headers=tom).json()
            assert [t["id"] for t in mine] == [tom_token_id] and mine[0]["last_used_at"]
            # A teacher cannot see or revoke someone else's token (it is "not found").
            admins_id = by_label["admin scripts"]["id"]
            assert client.delete(f"/api/teacher/tokens/{admins_id}", headers=tom).status_code == 404
            assert client.get("/api/admin/tokens", headers=tom).status_code == 403
            revoked = client.delete(f"/api/admin/tokens/{tom_token_id}", headers=admin)
            assert revoked.status_code == 200 and revoked.json()["revoked_at"]
            assert client.get("/api/teacher/classes", headers=tom).status_code == 401
            assert [t["label"] for t in client.get("/api/admin/tokens", headers=admin).json()] == [
                "admin scripts"
            ]
            everything = client.get(
                "/api/admin/tokens", headers=admin, params={"include_revoked": True}
            ).json()
            assert len(everything) == 2
            assert client.delete("/api/admin/tokens/999", headers=admin).status_code == 404
        with classroom.session() as session:
            events = session.scalars(select(AuditEvent.action)).all()
            assert "api_token.revoked" in events
    finally:
        classroom.close()


def test_last_used_is_written_at_most_once_a_minute(tmp_path: Path) -> None:
    classroom = open_classroom(f"sqlite:///{tmp_path / 'auth.db'}", secret_box=SecretBox.generate())
    try:
        with classroom.transaction() as session:
            ada = people.create_person(
                session, Actor.system(), name="Ada", email="ada@x.example", roles=[Role.ADMIN]
            )
            row, token = create_api_token(session, Actor.system(), ada)
        long_ago = utc_now() - timedelta(minutes=5)
        with classroom.transaction() as session:
            session.get_one(ApiToken, row.id).last_used_at = long_ago
        with classroom.transaction() as session:
            assert person_for_token(session, token) is not None
        with classroom.session() as session:
            first = session.get_one(ApiToken, row.id).last_used_at
            assert first is not None and first > long_ago
        with classroom.transaction() as session:
            assert person_for_token(session, token) is not None
        with classroom.session() as session:
            assert session.get_one(ApiToken, row.id).last_used_at == first
    finally:
        classroom.close()
