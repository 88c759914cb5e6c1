"""Connecting Google Classroom as an administrator: connect checks and seals the key file,
authorise makes real calls against the local Classroom and names each failure with its fix,
disconnect erases the key and leaves Classroom alone. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select

from googleclassroom.google_world import google_service, new_course
from sislink.classroom import Actor, Classroom
from sislink.classroom.models import AuditEvent, GoogleConnection
from sislink.googleclassroom.emulator import ClassroomConfig, RunningClassroom, running_classroom
from sislink.sync import google_connection as google
from sislink.sync.errors import AuthorisationFailed, InvalidConnectionDetails, NotConnected

ADMIN = Actor.system()


@pytest.fixture
def local() -> Iterator[RunningClassroom]:
    with running_classroom(students=60) as running:
        yield running


def _connect(classroom: Classroom, running: RunningClassroom, **overrides: str) -> None:
    google.connect(
        classroom,
        ADMIN,
        key_file_text=overrides.pop("key", None) or running.key_file.read_text(),
        admin_email=overrides.pop("admin_email", running.admin_email),
        api_endpoint=running.api_url,
        **overrides,
    )


def test_connect_seals_the_key_and_calls_nothing(
    classroom: Classroom, local: RunningClassroom
) -> None:
    calls_before = local.classroom.log.http_requests
    _connect(classroom, local)
    private = json.loads(local.key_file.read_text())["private_key"]
    with classroom.session() as session:
        row = session.scalars(select(GoogleConnection)).one()
        assert row.key_sealed and private[40:100] not in row.key_sealed
        assert row.status == "draft" and row.domain == local.domain
        events = session.scalars(select(AuditEvent)).all()
        assert all(private[40:100] not in json.dumps(e.details) for e in events)
    view = google.status(classroom)
    assert view is not None and private[40:100] not in json.dumps(view.as_dict())
    assert local.classroom.log.http_requests == calls_before


def test_connect_refuses_what_cannot_work_and_stores_nothing(
    classroom: Classroom, local: RunningClassroom
) -> None:
    with pytest.raises(InvalidConnectionDetails) as caught:
        _connect(classroom, local, key='{"installed": {"client_id": "x"}}')
    assert "not a service account key" in str(caught.value)
    with pytest.raises(InvalidConnectionDetails) as caught:
        _connect(classroom, local, admin_email="visitor@elsewhere.example.net", domain=local.domain)
    assert f"outside the domain {local.domain}" in str(caught.value)
    assert google.status(classroom) is None


def test_authorise_makes_real_calls_and_says_each_step(
    classroom: Classroom, local: RunningClassroom
) -> None:
    new_course(google_service(local, local.admin_email), local.teacher_email, alias="d:x")
    _connect(classroom, local)
    view = google.authorise(classroom, ADMIN)
    assert view.status == "authorised"
    assert [c.name for c in view.checks] == [
        "token",
        "domain and API",
        "list courses",
        "administrator",
    ]
    assert all(c.ok for c in view.checks)
    assert view.checks[-1].detail == "sees courses it does not teach or attend"


def test_a_delegation_missing_a_scope_is_named_with_the_client_id(classroom: Classroom) -> None:
    config = ClassroomConfig(
        delegated_scopes=frozenset({"https://www.googleapis.com/auth/classroom.courses"})
    )
    with running_classroom(students=5, config=config) as running:
        _connect(classroom, running)
        with pytest.raises(AuthorisationFailed) as caught:
            google.authorise(classroom, ADMIN)
    assert caught.value.problem == "delegation"
    client_id = json.loads(running.key_file.read_text())["client_id"]
    assert f"client id {client_id}" in caught.value.message
    view = google.status(classroom)
    assert view is not None and view.status == "draft" and not view.checks[-1].ok


def test_an_api_switched_off_in_the_project_is_named(classroom: Classroom) -> None:
    with running_classroom(students=5, config=ClassroomConfig(api_enabled=False)) as running:
        _connect(classroom, running)
        with pytest.raises(AuthorisationFailed) as caught:
            google.authorise(classroom, ADMIN)
    assert caught.value.problem == "api_disabled"
    assert "enable it in the Google Cloud console" in caught.value.message


def test_a_key_google_does_not_know_is_named(classroom: Classroom, local: RunningClassroom) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    info = {**json.loads(local.key_file.read_text()), "private_key": stranger.decode()}
    _connect(classroom, local, key=json.dumps(info))
    with pytest.raises(AuthorisationFailed) as caught:
        google.authorise(classroom, ADMIN)
    assert caught.value.problem == "key_unknown"


def test_a_teacher_given_as_administrator_is_found_out(
    classroom: Classroom, local: RunningClassroom
) -> None:
    new_course(google_service(local, local.admin_email), local.teacher_email, alias="d:y")
    other_teacher = next(
        u.email for u in local.directory.users
        if u.role == "teacher" and u.email != local.teacher_email and u.classroom_enabled
    )  # fmt: skip
    new_course(google_service(local, local.admin_email), other_teacher, alias="d:z")
    _connect(classroom, local, admin_email=local.teacher_email)
    with pytest.raises(AuthorisationFailed) as caught:
        google.authorise(classroom, ADMIN)
    assert caught.value.problem == "not_admin"
    assert "not an administrator" in caught.value.message


def test_disconnect_erases_the_key_and_leaves_classroom_alone(
    classroom: Classroom, local: RunningClassroom, tmp_path: Path
) -> None:
    new_course(google_service(local, local.admin_email), local.teacher_email, alias="d:kept")
    _connect(classroom, local)
    google.authorise(classroom, ADMIN)
    calls_before = local.classroom.log.http_requests
    google.disconnect(classroom, ADMIN)
    with classroom.session() as session:
        row = session.scalars(select(GoogleConnection)).one()
        assert row.key_sealed is None and row.status == "disconnected"
    assert google.status(classroom) is None
    assert local.classroom.log.http_requests == calls_before
    assert len(local.backend.tables["course"]) == 1
    with pytest.raises(NotConnected):
        google.authorise(classroom, ADMIN)
