"""Helpers for the Google Classroom tests: Google's own client built exactly as a district's code
builds it (`build(..., static_discovery=True, client_options={"api_endpoint": ...})`) with the key
file the local Classroom wrote; sislink's `ClassroomClient`; a few people and a course."""

from __future__ import annotations

import json
from typing import Any

from google.oauth2 import service_account
from googleapiclient.discovery import Resource, build

from sislink.googleclassroom import SCOPES, ClassroomClient, ClientSettings, ServiceAccountKey
from sislink.googleclassroom.emulator import RunningClassroom


def google_service(
    running: RunningClassroom,
    as_user: str,
    *,
    scopes: tuple[str, ...] = SCOPES,
    key_file: Any = None,
) -> Resource:
    """What a district's code does with its key file and an email, against this Classroom."""
    info = json.loads((key_file or running.key_file).read_text())
    credentials = service_account.Credentials.from_service_account_info(
        info, scopes=list(scopes)
    ).with_subject(as_user)
    return build(
        "classroom",
        "v1",
        credentials=credentials,
        static_discovery=True,
        client_options={"api_endpoint": running.api_url},
    )


def sislink_client(
    running: RunningClassroom, settings: ClientSettings | None = None
) -> ClassroomClient:
    return ClassroomClient(
        ServiceAccountKey.from_file(running.key_file),
        admin_email=running.admin_email,
        api_endpoint=running.api_url,
        settings=settings or ClientSettings(backoff_base_s=0.01, backoff_cap_s=0.05),
    )


def students_of(running: RunningClassroom, count: int) -> list[str]:
    return [u.email for u in running.directory.users if u.role == "student"][:count]


def teachers_of(running: RunningClassroom, count: int) -> list[str]:
    return [
        u.email for u in running.directory.users if u.role == "teacher" and u.classroom_enabled
    ][:count]


def new_course(
    service: Resource, owner: str, alias: str | None = None, **fields: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "Biology", "section": "Period 1", "ownerId": owner, **fields}
    if alias:
        body["id"] = alias
    created: dict[str, Any] = service.courses().create(body=body).execute(num_retries=5)
    return created
